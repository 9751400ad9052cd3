//! Logging set-up and the rules for what goes to stdout and stderr.
//!
//! Results (tables, the paths written) go to stdout. Progress bars, per-epoch lines and logs
//! go to stderr, so `toploss top RUN > table.txt` captures only the table.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the tracing subscriber on stderr. Warnings and errors show by default, also with
/// `-q`, because they concern the results. `-v` adds debug and `-vv` trace messages, and
/// `RUST_LOG` overrides both.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time()
        .init();
}

/// Output settings requested on the command line.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// `-q`: no progress bars, no per-epoch lines.
    pub quiet: bool,
    /// Whether stderr is a terminal, so that progress bars make sense.
    pub interactive: bool,
}

impl Ui {
    /// Reads the terminal state.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            interactive: std::io::stderr().is_terminal() && !quiet,
        }
    }

    /// Prints a status line on stderr unless `-q` was given.
    pub fn status(&self, line: &str) {
        if !self.quiet {
            crate::progress::println_above_bars(line);
        }
    }
}

/// Formats a count with its noun, adding an "s" unless the count is 1: `1 epoch`, `5 epochs`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_adds_plural_s() {
        assert_eq!(count(0, "epoch"), "0 epochs");
        assert_eq!(count(1, "epoch"), "1 epoch");
        assert_eq!(count(70_000, "image"), "70000 images");
    }
}
