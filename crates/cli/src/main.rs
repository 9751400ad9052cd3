//! The `toploss` command-line tool: argument parsing, progress display and logging. The work
//! itself lives in the library crates.

mod args;
mod compare;
mod confusion;
mod fetch;
mod issues;
mod noise;
mod onnx;
mod output;
mod predictions;
mod progress;
mod report;
mod review;
mod score;
mod score_onnx;
mod top;
mod train;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

// burn's CPU backend allocates and frees many short-lived buffers per step. With glibc malloc
// it spent much of its time in page faults: about 1,350 img/s against 2,000-2,200 with
// mimalloc (2 cores, shallow CNN, batch 128), and far less steady.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a command that failed; see `toploss --help`.
const EXIT_ERROR: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.verbose);
    // Commands that can stop cleanly print what Ctrl-C does; the others keep the default, which
    // ends the process at once (their files are written atomically).
    let on_stop = match &cli.command {
        Command::Train(_) | Command::Demo(_) => Some("stopping after the current step"),
        Command::Score(_) | Command::Fetch(_) => Some("stopping after the current batch"),
        Command::Review(_) => Some("stopping the server"),
        _ => None,
    };
    if let Some(message) = on_stop {
        progress::install_stop_handler(message);
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            progress::clear_all();
            eprintln!("error: {}", error_chain(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Joins an error and its causes with ": ", leaving out a cause whose text the message already
/// contains (library errors often quote their source in their own message).
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ui = output::Ui::new(cli.quiet);
    match cli.command {
        Command::Train(args) => train::run_train(&args, &ui),
        Command::Top(args) => top::run_top(&args, &ui),
        Command::Demo(args) => train::run_demo(&args, &ui),
        Command::Issues(args) => issues::run_issues(&args, &ui),
        Command::Score(args) => score::run_score(&args, &ui),
        Command::Confusion(args) => confusion::run_confusion(&args, &ui),
        Command::Compare(args) => compare::run_compare(&args, &ui),
        Command::Fetch(args) => fetch::run_fetch(&args, &ui),
        Command::Review(args) => review::run_review(&args, &ui),
        Command::Report(args) => report::run_report(&args, &ui),
    }
}
