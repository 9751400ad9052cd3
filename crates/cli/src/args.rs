//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use toploss_data::DatasetSpec;
use toploss_train::{ModelKind, SaveProbs};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  the command failed (bad input, unreadable or unwritable file, training error)
  2  invalid command line (unknown flag, missing or malformed value)";

/// Find the training images a classifier gets most wrong, show them, and test which data fix
/// helps.
#[derive(Debug, Parser)]
#[command(name = "toploss", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Print only results and errors: no progress bars, no per-epoch lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a classifier and record every sample's loss after every epoch.
    #[command(after_help = EXIT_CODES)]
    Train(TrainArgs),
    /// Show the samples with the highest (or lowest) loss as a PNG grid and a table.
    #[command(after_help = EXIT_CODES)]
    Top(TopArgs),
    /// Train the shallow CNN on the bundled MNIST and show the top losses of every epoch.
    #[command(after_help = EXIT_CODES)]
    Demo(DemoArgs),
}

/// Model choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelArg {
    /// Conv 32-64-64 (3x3) with two max-pools, dense 64, dense K.
    ShallowCnn,
    /// Dense 256-128 on the flattened image.
    Mlp,
}

impl From<ModelArg> for ModelKind {
    fn from(model: ModelArg) -> Self {
        match model {
            ModelArg::ShallowCnn => ModelKind::ShallowCnn,
            ModelArg::Mlp => ModelKind::Mlp,
        }
    }
}

/// `--save-probs` on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SaveProbsArg {
    /// Keep probs/SPLIT-eNN.npy of the last epoch only.
    Last,
    /// Keep them for every epoch (N x K x 4 bytes per split and epoch).
    All,
}

impl From<SaveProbsArg> for SaveProbs {
    fn from(value: SaveProbsArg) -> Self {
        match value {
            SaveProbsArg::Last => SaveProbs::Last,
            SaveProbsArg::All => SaveProbs::All,
        }
    }
}

/// Options shared by `train` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct TrainingOptions {
    /// Architecture to train.
    #[arg(long, value_enum, default_value_t = ModelArg::ShallowCnn)]
    pub model: ModelArg,

    /// Number of passes over the train split.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub epochs: u32,

    /// Samples per training step.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub batch_size: usize,

    /// Samples per forward pass in the evaluation pass (speed and memory only).
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub eval_batch_size: usize,

    /// Adam learning rate (step size).
    #[arg(long = "lr", default_value_t = 1e-3, value_name = "RATE")]
    pub learning_rate: f64,

    /// Seed of weight initialisation and shuffling; the same seed, data and build give the
    /// same losses.
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,

    /// Label smoothing epsilon, 0 <= EPS < 1: training targets become 1-EPS on the label plus
    /// EPS/K on every class. Recorded losses stay plain cross-entropy.
    #[arg(long, default_value_t = 0.0, value_name = "EPS")]
    pub label_smoothing: f64,

    /// Use only the first N train samples (ids 0..N), for quick runs.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,

    /// Use only the first N test samples (ids 0..N), for quick runs.
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,

    /// Which epochs keep their N x K probabilities in probs/.
    #[arg(long, value_enum, default_value_t = SaveProbsArg::Last)]
    pub save_probs: SaveProbsArg,

    /// Worker threads for training and evaluation [default: all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// `toploss train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset as FORMAT:PATH: mnist:DIR, fashion-mnist:DIR or idx:DIR (the four IDX files,
    /// gzipped or raw).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub data: DatasetSpec,

    /// Run folder to create.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Write into --out even if it already holds files (run files are replaced, nothing is
    /// deleted).
    #[arg(long)]
    pub overwrite: bool,

    #[command(flatten)]
    pub training: TrainingOptions,
}

/// `toploss demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// MNIST folder [default: the copy bundled in the repository, data/mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Run folder [default: runs/demo, or runs/demo-2, -3, ... if that exists].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Tiles per grid.
    #[arg(short, default_value_t = 16, value_name = "K")]
    pub k: usize,

    #[command(flatten)]
    pub training: TrainingOptions,
}

/// Dataset split on the command line.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SplitArg {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

/// `toploss top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Run folder written by `toploss train`.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,

    /// Number of samples to show (at least 1). More than the split holds shows the whole split.
    #[arg(short, default_value_t = 16, value_name = "K")]
    pub k: usize,

    /// Epoch to rank, 1-based, or `last`.
    #[arg(long, default_value = "last", value_name = "N|last")]
    pub epoch: String,

    /// Split to rank.
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    pub split: SplitArg,

    /// Only samples whose given label is this class (a class name or index).
    #[arg(long, value_name = "NAME")]
    pub class: Option<String>,

    /// Rank the lowest losses instead of the highest (NaN losses still come first).
    #[arg(long)]
    pub smallest: bool,

    /// Grid PNG to write [default: RUN/top/SPLIT-eNN-top-K.png].
    #[arg(long, value_name = "FILE.png")]
    pub out: Option<PathBuf>,

    /// Also write the ranking as CSV: rank,id,label,predicted,loss,p_label,p_predicted.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Read the images from this dataset instead of the path recorded in run.json (its
    /// fingerprint must match).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub data: Option<DatasetSpec>,

    /// Print no table, only the paths written.
    #[arg(long)]
    pub no_table: bool,
}
