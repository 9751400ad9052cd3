//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use toploss_data::DatasetSpec;
use toploss_train::{ModelKind, SaveProbs};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  the command failed: bad input, a value out of range, an unreadable or unwritable file,
     a training error or an interrupted run
  2  the command line does not parse: unknown flag, missing argument, or a value of the
     wrong type";

/// Find the training images a classifier gets most wrong, show them, and test which data fix
/// helps.
#[derive(Debug, Parser)]
#[command(name = "toploss", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Print only results, warnings and errors: no progress bars, no status or per-epoch lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The subcommand.
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
    /// Rank a run's samples by how likely their label is wrong: issues.csv and a grid PNG.
    #[command(after_help = EXIT_CODES)]
    Issues(IssuesArgs),
    /// Rank the samples of your own model's predictions by how likely their label is wrong.
    #[command(after_help = EXIT_CODES)]
    Score(ScoreArgs),
    /// Show the confusion matrix of a run or of a predictions file, as a table and a PNG.
    #[command(after_help = EXIT_CODES)]
    Confusion(ConfusionArgs),
    /// Compare configurations over seeds: test accuracy and test cross-entropy as mean ± sd, a
    /// table and a PNG.
    ///
    /// Runs are grouped into configurations by the `config` in their run.json, ignoring the
    /// keys that do not change the experiment: seed, seeds, threads, eval_batch_size,
    /// save_probs, out and overwrite. The dataset counts by its fingerprint, not its path.
    /// noise_seed does count, because another noise draw is another training set. Each
    /// configuration is labelled by the keys whose values differ between them.
    ///
    /// The table shows, per configuration: the number of seeds; final and best test accuracy
    /// (%) and final test cross-entropy (nats) as mean ± sample standard deviation (ddof = 1;
    /// n/a for a single seed); and the difference of the mean final accuracy to the FIRST
    /// configuration in percentage points, which exceeds the spread when |diff.| > sd(first) +
    /// sd(this). Configurations stay in the order given and are never ranked by training loss,
    /// which label smoothing inflates.
    #[command(after_help = EXIT_CODES)]
    Compare(CompareArgs),
    /// Download MNIST, Fashion-MNIST or CIFAR-10 from the official servers, checked against
    /// the published MD5s, into a cache folder that `toploss train --data` reads.
    ///
    /// Files go to DIR/DATASET/ (DIR from --dir, else $TOPLOSS_DATA_DIR, else the platform's
    /// cache folder plus `toploss`, e.g. ~/.cache/toploss on Linux). An interrupted download
    /// resumes where it stopped; files already present and verified are skipped. The last
    /// line is the `toploss train` command for the folder.
    #[command(after_help = EXIT_CODES)]
    Fetch(FetchArgs),
    /// Serve a local web page that pages through a run's candidates, one large image at a time,
    /// and writes each keep / relabel / discard decision to RUN/corrections.csv at once.
    ///
    /// The first line on stdout is `Review page: http://ADDRESS:PORT/`. Ctrl-C stops the
    /// server. Decisions apply to training-sample ids, so with --split test the page is
    /// read-only.
    #[command(after_help = EXIT_CODES)]
    Review(ReviewArgs),
    /// Write one self-contained HTML page of a run: top-loss grid with an epoch slider,
    /// per-sample histories, curves, loss histogram, confusion matrix, label-issue candidates
    /// and, for several runs, the comparison.
    ///
    /// The page embeds its images, data, styles and script; it makes no request to any host
    /// and opens offline in any browser. The first run is shown in detail; with more runs (or
    /// a group folder of `train --seeds N`) the page also has the `compare` table and curves.
    #[command(after_help = EXIT_CODES)]
    Report(ReportArgs),
}

/// Model choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModelArg {
    /// Conv 32-64-64 (3x3) with two max-pools, dense 64, dense K.
    ShallowCnn,
    /// Dense 256-128 on the flattened image.
    Mlp,
    /// ResNet-8: 3x3 convolutions with 16, 32 and 64 filters, BatchNorm and skip connections
    /// (78k weights). Meant for 32x32 RGB images such as CIFAR-10. It trains slower per image
    /// than shallow-cnn and needs more epochs.
    ResnetSmall,
}

impl From<ModelArg> for ModelKind {
    fn from(model: ModelArg) -> Self {
        match model {
            ModelArg::ShallowCnn => ModelKind::ShallowCnn,
            ModelArg::Mlp => ModelKind::Mlp,
            ModelArg::ResnetSmall => ModelKind::ResnetSmall,
        }
    }
}

/// `--noise-kind` on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NoiseKindArg {
    /// The new label is any other class, uniformly.
    Uniform,
    /// Class c becomes c+1 mod K.
    Pair,
}

impl From<NoiseKindArg> for toploss_data::NoiseKind {
    fn from(kind: NoiseKindArg) -> Self {
        match kind {
            NoiseKindArg::Uniform => toploss_data::NoiseKind::Uniform,
            NoiseKindArg::Pair => toploss_data::NoiseKind::Pair,
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

    /// Corrections file (id,action,new_label,note): give its `relabel` rows their new label
    /// before training. A file inside a run folder must come from a run on the same dataset.
    #[arg(long, value_name = "FILE")]
    pub relabel: Option<PathBuf>,

    /// Corrections file: leave its `discard` rows out of training. They keep their ids and are
    /// still scored every epoch. May be the same file as --relabel.
    #[arg(long, value_name = "FILE")]
    pub discard: Option<PathBuf>,

    /// Flip this share of train labels (0 to 1, e.g. 0.2) before training, to test label-issue
    /// detection; the flipped ids go to RUN/noise.json.
    #[arg(long, value_name = "RATE")]
    pub label_noise: Option<f64>,

    /// Rule for the new labels of --label-noise: uniform (any other class) or pair (class c
    /// to c+1 mod K).
    #[arg(long, value_enum, default_value_t = NoiseKindArg::Uniform, requires = "label_noise")]
    pub noise_kind: NoiseKindArg,

    /// Seed of the --label-noise draw (independent of --seed, so that several training seeds
    /// see the same noisy labels).
    #[arg(long, default_value_t = 0, value_name = "S", requires = "label_noise")]
    pub noise_seed: u64,

    /// Use only the first N train samples (ids 0..N), for quick runs.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,

    /// Use only the first N test samples (ids 0..N), for quick runs.
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,

    /// Epochs whose N x K probabilities stay in probs/.
    #[arg(long, value_enum, default_value_t = SaveProbsArg::Last)]
    pub save_probs: SaveProbsArg,

    /// Also train K cross-validation models (stratified by label) and write out-of-fold
    /// probabilities of the train split to RUN/oof_probs.npy, for confident learning. Costs
    /// about K-1 extra full trainings.
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,

    /// Worker threads for training and evaluation [default: all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Code that runs shallow-cnn's convolutions, ReLUs and max-pools on the CPU: fast
    /// (toploss's kernels) or burn (burn's own ops, about 4x slower). Each step computes the
    /// same values up to f32 rounding, but over a run the two drift apart as two seeds do. Use
    /// burn to check that a result does not depend on the fast kernels.
    #[arg(long, value_enum, default_value_t = KernelsArg::Fast)]
    pub kernels: KernelsArg,
}

/// Kernel choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KernelsArg {
    /// toploss's kernels (on the CPU backend).
    Fast,
    /// burn's own ops.
    Burn,
}

impl From<KernelsArg> for toploss_train::Kernels {
    fn from(kernels: KernelsArg) -> Self {
        match kernels {
            KernelsArg::Fast => toploss_train::Kernels::Fast,
            KernelsArg::Burn => toploss_train::Kernels::Burn,
        }
    }
}

/// `toploss train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset as FORMAT:PATH: mnist:DIR, fashion-mnist:DIR or idx:DIR (the four IDX files,
    /// gzipped or raw); cifar10:DIR (the CIFAR-10 binary batches); folder:DIR (one subfolder
    /// of PNG/JPEG images per class, optionally inside train/ and test/); csv:FILE or csv:DIR
    /// (a label column plus pixel columns; DIR contains train.csv and test.csv).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub data: DatasetSpec,

    /// Run folder to create.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Write into --out even if it already contains files. The run files are replaced, and
    /// those of the earlier run that this run does not write (model.safetensors, noise.json,
    /// oof_probs.npy, probs/train-eNN.npy and test-eNN.npy) are removed. Other files stay.
    #[arg(long)]
    pub overwrite: bool,

    /// Train N runs with seeds S, S+1, ..., S+N-1 (S from --seed) into OUT/seed-S/, for
    /// `toploss compare`.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seeds: u32,

    #[command(flatten)]
    pub training: TrainingOptions,

    // Last, because its help heading also applies to the arguments that follow it. Boxed so
    // that the `Command` enum stays small (clippy::large_enum_variant).
    #[command(flatten)]
    pub dataset: Box<DatasetArgs>,
}

/// Reader options of the folder:, csv: and cifar10: datasets (`toploss train`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Dataset options (folder:, csv:)")]
pub struct DatasetArgs {
    /// Share of each class that goes to the test split when the files have none (a single
    /// CSV file, or class folders without train/ and test/), 0 < F < 1 [default: 0.2].
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,

    /// Seed of that generated test split (independent of --seed, so that every training seed
    /// gets the same split).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub split_seed: u64,

    /// csv: label column, a header name or a 0-based index [default: the column named
    /// `label`, else the first column].
    #[arg(long, value_name = "NAME|INDEX")]
    pub label_column: Option<toploss_data::LabelColumn>,

    /// csv: image shape as CxHxW or HxW, pixel columns in C x H x W order [default: square
    /// grayscale, from the number of pixel columns].
    #[arg(long, value_name = "CxHxW")]
    pub image_shape: Option<toploss_data::ImageShapeOption>,

    /// csv: file of class names, one per line in label order. A label matches a name or is a
    /// 0-based index into the list [default: the sorted label values].
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,

    /// folder: resize every image to this height x width in pixels (bilinear) [default: the
    /// most common size].
    #[arg(long, value_name = "HxW")]
    pub image_size: Option<toploss_data::ImageSize>,

    /// folder: convert every image to 1 (grayscale) or 3 (RGB) channels [default: 1 when
    /// every image is grayscale, else 3].
    #[arg(long, value_name = "1|3")]
    pub channels: Option<usize>,

    /// folder: leave out image files that cannot be decoded, and list them, instead of
    /// stopping at the first one.
    #[arg(long)]
    pub skip_unreadable: bool,
}

impl DatasetArgs {
    /// Returns the options as the dataset readers take them.
    pub fn options(&self) -> toploss_data::DatasetOptions {
        toploss_data::DatasetOptions {
            test_fraction: self.test_fraction,
            split_seed: self.split_seed,
            label_column: self.label_column.clone(),
            image_shape: self.image_shape,
            // Absolute, so that commands run later from another folder find the same file.
            classes_file: self
                .classes
                .as_ref()
                .map(|path| std::fs::canonicalize(path).unwrap_or_else(|_| path.clone())),
            image_size: self.image_size,
            channels: self.channels,
            skip_unreadable: self.skip_unreadable,
        }
    }
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

    /// Write into --out even if it already contains files (run files are replaced, nothing
    /// else is deleted).
    #[arg(long)]
    pub overwrite: bool,

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

    /// Number of samples to show (at least 1). A k larger than the split shows the whole split.
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

/// `--method` of `toploss issues`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum IssueMethodArg {
    /// Confident learning (Northcutt et al. 2021) on RUN/oof_probs.npy when it exists, else on
    /// the final in-sample probabilities. Score: the --rank-by score, lower = more suspicious.
    /// Candidates: the samples that --filter flags.
    ConfidentLearning,
    /// Area under the margin (Pleiss et al. 2020): the mean in-loop training margin over
    /// epochs 2..N (train split only). Lower = more suspicious; candidates have AUM < 0.
    Aum,
    /// Dataset cartography (Swayamdipta et al. 2020): score = confidence, the mean p(given
    /// label) over epochs 1..N. Lower = more suspicious; candidates have confidence < 0.5.
    /// Also writes cartography.csv with confidence, variability and correctness.
    Cartography,
    /// Cross-entropy of the epoch. HIGHER = more suspicious; candidates have loss > ln 2, that
    /// is p(given label) < 0.5.
    Loss,
    /// Logit margin of the epoch: logit of the given label minus the largest other logit.
    /// Lower = more suspicious; candidates have margin < 0 (predicted class != given label).
    Margin,
}

/// `--filter` of confident learning; the names follow cleanlab's `filter_by`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FilterArg {
    /// For each pair of classes (i, j), flag the estimated number of class-i samples that
    /// belong to j, those with the largest p_j - p_i (cleanlab's default).
    PruneByNoiseRate,
    /// For each class, flag its estimated number of errors, those with the lowest p(given).
    PruneByClass,
    /// Flagged by both prune-by-noise-rate and prune-by-class.
    Both,
    /// The samples counted off the diagonal of the confident joint.
    ConfidentLearning,
    /// The samples whose predicted class differs from the given label.
    PredictedNeqGiven,
    /// The estimated number of errors, taken by lowest normalized margin.
    LowNormalizedMargin,
    /// The estimated number of errors, taken by lowest self-confidence.
    LowSelfConfidence,
}

/// `--rank-by` of confident learning; every score lies in [0, 1], lower = more suspicious.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RankByArg {
    /// p(given label).
    SelfConfidence,
    /// (p(given label) - max p(other class) + 1) / 2.
    NormalizedMargin,
    /// Self-confidence divided by the entropy of the row (cleanlab's
    /// confidence_weighted_entropy).
    ConfidenceWeightedEntropy,
}

/// `toploss issues`.
#[derive(Debug, Args)]
pub struct IssuesArgs {
    /// Run folder written by `toploss train`.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,

    /// How to score the samples; see the values below for each score's direction.
    #[arg(long, value_enum)]
    pub method: IssueMethodArg,

    /// Filter that selects the samples confident learning flags (only with --method
    /// confident-learning).
    #[arg(long, value_enum, default_value_t = FilterArg::PruneByNoiseRate)]
    pub filter: FilterArg,

    /// Score that orders the flagged samples (only with --method confident-learning).
    #[arg(long, value_enum, default_value_t = RankByArg::SelfConfidence)]
    pub rank_by: RankByArg,

    /// Keep at most N candidates, the most suspicious first [default: every candidate]. The
    /// grid shows at most 64 of them.
    #[arg(short, value_name = "N")]
    pub k: Option<usize>,

    /// Split to score (aum needs train, because the test split has no training margin).
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    pub split: SplitArg,

    /// Epoch, 1-based, or `last`: loss, margin and confident learning use this epoch's
    /// values; aum and cartography use epochs 1 to N.
    #[arg(long, default_value = "last", value_name = "N|last")]
    pub epoch: String,

    /// Output folder for issues.csv and the grid [default: RUN/issues/METHOD].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Write into --out even if it already contains files (files of the same name are replaced,
    /// nothing else is deleted).
    #[arg(long)]
    pub overwrite: bool,

    /// Read the images from this dataset instead of the path recorded in run.json (its
    /// fingerprint must match).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub data: Option<DatasetSpec>,
}

/// `--kind` of a predictions file.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum KindArg {
    /// Probabilities when every row lies in [0, 1] and sums to 1 within 1e-3, else logits.
    Auto,
    /// Raw scores before softmax; softmax is applied.
    Logits,
    /// Softmax outputs, one distribution per row.
    Probabilities,
}

/// `--method` of `toploss score`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ScoreMethodArg {
    /// Confident learning; see --filter and --rank-by. Score: the --rank-by score, lower =
    /// more suspicious. Candidates: the samples that --filter flags.
    ConfidentLearning,
    /// Cross-entropy. HIGHER = more suspicious; candidates have loss > ln 2, that is
    /// p(given label) < 0.5.
    Loss,
    /// Normalized margin p(given label) - max p(other class), in [-1, 1]. Lower = more
    /// suspicious; candidates have margin < 0.
    Margin,
    /// p(given label), in [0, 1]. Lower = more suspicious; candidates have it < 0.5.
    SelfConfidence,
}

/// Predictions and labels from files: shared by `score` and `confusion`.
#[derive(Debug, Clone, Args)]
pub struct PredictionFiles {
    /// N x K logits or probabilities: .npy (float32 or float64, 2-D), .csv (K numbers a row,
    /// optional header) or .parquet (one list<float> column, or K numeric columns).
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,

    /// N given labels, 0 to K-1: .npy (any integer dtype, 1-D), .csv or .txt (one a line,
    /// optional header) or .parquet (one integer column, or a column named `label`).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Class names, one a line in label order [default: the classes of the --images dataset
    /// where the command has that flag, else 0 to K-1].
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,

    /// Kind of values in --predictions (or in the output of an --onnx model): logits,
    /// probabilities, or auto-detected.
    #[arg(long, value_enum, default_value_t = KindArg::Auto)]
    pub kind: KindArg,
}

/// `toploss score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub files: PredictionFiles,

    /// How to score the samples; see the values below for each score's direction.
    #[arg(long, value_enum, default_value_t = ScoreMethodArg::ConfidentLearning)]
    pub method: ScoreMethodArg,

    /// Filter that selects the samples confident learning flags (only with --method
    /// confident-learning).
    #[arg(long, value_enum, default_value_t = FilterArg::PruneByNoiseRate)]
    pub filter: FilterArg,

    /// Score that orders the flagged samples (only with --method confident-learning).
    #[arg(long, value_enum, default_value_t = RankByArg::SelfConfidence)]
    pub rank_by: RankByArg,

    /// Keep at most N candidates, the most suspicious first [default: every candidate]. The
    /// grid shows at most 64 of them.
    #[arg(short, value_name = "N")]
    pub k: Option<usize>,

    /// Dataset whose images the rows belong to (row i = sample id i), for a grid PNG.
    #[arg(long, value_name = "FORMAT:PATH")]
    pub images: Option<DatasetSpec>,

    /// Split of --images that the rows belong to.
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    pub split: SplitArg,

    /// Output folder for issues.csv, scores.csv and the grid.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Write into --out even if it already contains files (files of the same name are replaced,
    /// nothing else is deleted).
    #[arg(long)]
    pub overwrite: bool,

    // Last, because its help heading also applies to the arguments that follow it. Boxed so
    // that the `Command` enum stays small (clippy::large_enum_variant).
    #[command(flatten)]
    pub onnx: Box<OnnxArgs>,
}

/// `toploss score --onnx`: run an ONNX classifier over a dataset.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Scoring an ONNX model (--onnx)")]
pub struct OnnxArgs {
    /// ONNX image classifier to run over --data instead of reading --predictions. Input:
    /// float32 [batch, C, H, W] (or [batch, C*H*W]) with pixels scaled to [0, 1]; output:
    /// [batch, K] logits or probabilities (see --kind). Writes a run folder (run.json,
    /// dynamics.parquet, probs/) to --out for `toploss top`, `issues` and `confusion`.
    #[arg(
        long,
        value_name = "MODEL.onnx",
        requires = "data",
        conflicts_with_all = ["predictions", "labels", "images", "method", "filter", "rank_by", "k", "split"]
    )]
    pub onnx: Option<PathBuf>,

    /// Dataset to score with --onnx, as FORMAT:PATH (the formats of `toploss train --data`).
    /// Both splits are scored; a folder: dataset is resized to the model's input size.
    #[arg(long, value_name = "FORMAT:PATH", requires = "onnx")]
    pub data: Option<DatasetSpec>,

    /// Graph input that receives the images [default: the model's only input].
    #[arg(long, value_name = "NAME", requires = "onnx")]
    pub input_name: Option<String>,

    /// Normalization after scaling pixels to [0, 1]: x = (x - MEAN) / STD. MEAN,STD applies
    /// to every channel (MNIST: 0.1307,0.3081); M1/M2/M3,S1/S2/S3 gives one value per
    /// channel (ImageNet: 0.485/0.456/0.406,0.229/0.224/0.225). Use what the model was
    /// trained with.
    #[arg(
        long,
        default_value = "none",
        value_name = "MEAN,STD|none",
        requires = "onnx"
    )]
    pub normalize: crate::onnx::Normalize,

    /// Images per forward pass with --onnx (speed and memory only). A model whose batch
    /// dimension is fixed (often 1) uses that instead.
    #[arg(long, default_value_t = 256, value_name = "N", requires = "onnx")]
    pub batch_size: usize,

    /// Score only the first N train samples (ids 0..N).
    #[arg(long, value_name = "N", requires = "onnx")]
    pub train_limit: Option<usize>,

    /// Score only the first N test samples (ids 0..N).
    #[arg(long, value_name = "N", requires = "onnx")]
    pub test_limit: Option<usize>,
}

/// `toploss confusion`.
#[derive(Debug, Args)]
pub struct ConfusionArgs {
    /// Run folder written by `toploss train`; or pass --predictions and --labels instead.
    #[arg(value_name = "RUN", conflicts_with = "predictions")]
    pub run: Option<PathBuf>,

    #[command(flatten)]
    pub files: PredictionFiles,

    /// Epoch of RUN, 1-based, or `last`.
    #[arg(long, default_value = "last", value_name = "N|last")]
    pub epoch: String,

    /// Split of RUN.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,

    /// Heat-map PNG to write [default: RUN/confusion/SPLIT-eNN.png; required with
    /// --predictions].
    #[arg(long, value_name = "FILE.png")]
    pub out: Option<PathBuf>,

    /// Most-confused pairs (actual, predicted, count) to list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub pairs: usize,
}

/// `toploss compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run folders written by `toploss train`, or group folders whose subfolders are runs (the
    /// --out of `train --seeds N`). Runs still training are left out with a warning.
    #[arg(value_name = "RUN", required = true)]
    pub runs: Vec<PathBuf>,

    /// PNG of test accuracy and test cross-entropy per epoch: a thin line per run and a
    /// mean ± sd band per configuration.
    #[arg(long, default_value = "compare.png", value_name = "FILE.png")]
    pub out: PathBuf,

    /// Also write the table as CSV, one row per configuration: accuracies in percent,
    /// cross-entropy in nats, an empty sd for a single seed, and the run folders.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Print the table in Markdown; the `wrote ...` lines then go to stderr, so that stdout
    /// holds only the table and its notes.
    #[arg(long)]
    pub markdown: bool,

    /// Compare runs trained on different datasets (different fingerprints), which is
    /// otherwise an error; each dataset then forms its own configurations.
    #[arg(long)]
    pub allow_different_data: bool,
}

/// Dataset that `toploss fetch` can download.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FetchDataset {
    /// MNIST digits: the four IDX .gz files (about 12 MB).
    Mnist,
    /// Fashion-MNIST: the four IDX .gz files (about 31 MB).
    FashionMnist,
    /// CIFAR-10, binary version: cifar-10-binary.tar.gz (about 170 MB), unpacked to the
    /// batch files (184 MB more).
    Cifar10,
}

impl From<FetchDataset> for toploss_data::DatasetFormat {
    fn from(dataset: FetchDataset) -> Self {
        match dataset {
            FetchDataset::Mnist => toploss_data::DatasetFormat::Mnist,
            FetchDataset::FashionMnist => toploss_data::DatasetFormat::FashionMnist,
            FetchDataset::Cifar10 => toploss_data::DatasetFormat::Cifar10,
        }
    }
}

/// `toploss fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Dataset to download.
    #[arg(value_enum, value_name = "DATASET")]
    pub dataset: FetchDataset,

    /// Cache folder; the files go to DIR/DATASET/ [default: $TOPLOSS_DATA_DIR, else the
    /// platform's cache folder plus `toploss`].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Base URL that replaces the official servers, for a mirror or an air-gapped cache.
    /// Each file is requested as URL/DATASET/FILE, e.g.
    /// http://host:8000/mnist/train-images-idx3-ubyte.gz, so a cache folder served over
    /// HTTP is such a mirror. The published MD5s are still checked.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
}

/// `toploss review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Run folder written by `toploss train`; decisions go to RUN/corrections.csv.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,

    /// TCP port to listen on; 0 picks any free port.
    #[arg(long, default_value_t = 8765, value_name = "P")]
    pub port: u16,

    /// Address to listen on. The page has no login, so anyone who can reach this address can
    /// change RUN/corrections.csv; keep the default unless you trust the network.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub bind: std::net::IpAddr,

    /// Review the ids of this CSV in file order instead of the top losses: an `issues.csv`, a
    /// `top --csv` file, or any CSV with an `id` column (and optionally `rank` and `path`).
    #[arg(long, value_name = "FILE.csv")]
    pub candidates: Option<PathBuf>,

    /// Split whose samples are reviewed. Decisions need training-sample ids, so the test split
    /// can be viewed but not changed.
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    pub split: SplitArg,

    /// Epoch whose losses, predictions and probabilities are shown and ranked, 1-based, or
    /// `last`.
    #[arg(long, default_value = "last", value_name = "N|last")]
    pub epoch: String,

    /// Number of candidates (at least 1) [default: 100 highest losses; with --candidates,
    /// every row of the file].
    #[arg(short, value_name = "N")]
    pub k: Option<usize>,

    /// Read the images from this dataset instead of the path recorded in run.json (its
    /// fingerprint must match).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub data: Option<DatasetSpec>,
}

/// `toploss report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run folders written by `toploss train`, or group folders whose subfolders are runs.
    /// The first run is shown in detail; all of them are compared when there are several.
    #[arg(value_name = "RUN", required = true)]
    pub runs: Vec<PathBuf>,

    /// HTML file to write [default: FIRST_RUN/report.html]. An existing file is refused
    /// unless --overwrite is given.
    #[arg(long, value_name = "FILE.html")]
    pub out: Option<PathBuf>,

    /// Largest number of images the grid can show: the highest losses kept per epoch, split
    /// and class, and the end of the page's k slider. Each extra image adds a few hundred
    /// bytes per list to the file.
    #[arg(long, default_value_t = crate::report::DEFAULT_MAX_K, value_name = "K")]
    pub max_k: usize,

    /// Candidates listed per label-issue method (the counts cover them all).
    #[arg(long, default_value_t = crate::report::DEFAULT_CANDIDATES, value_name = "N")]
    pub candidates: usize,

    /// Read the images from this dataset instead of the path recorded in run.json (its
    /// fingerprint must match).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub data: Option<DatasetSpec>,

    /// Compare runs trained on different datasets (different fingerprints), which is
    /// otherwise an error.
    #[arg(long)]
    pub allow_different_data: bool,

    /// Replace the output file if it exists.
    #[arg(long)]
    pub overwrite: bool,
}
