//! `toploss fetch`: downloads a published dataset into the cache folder and prints the
//! `toploss train` command that reads it.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use indicatif::{DecimalBytes, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use toploss_data::DatasetFormat;
use toploss_data::fetch::{FetchEvent, RemoteFile, fetch, published};

use crate::args::FetchArgs;
use crate::output::Ui;

/// Environment variable with the cache folder, used when --dir is not given.
pub const DATA_DIR_ENV: &str = "TOPLOSS_DATA_DIR";

/// Subfolder of the platform's cache folder when neither --dir nor the variable is set.
const CACHE_SUBFOLDER: &str = "toploss";

/// Runs `toploss fetch`.
pub fn run_fetch(args: &FetchArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let format = DatasetFormat::from(args.dataset);
    let manifest = published(format)
        .ok_or_else(|| anyhow!("no published files are known for {}", format.name()))?;
    let root = cache_root(args.dir.as_deref())?;
    let dir = root.join(&manifest.name);
    ui.status(&format!(
        "fetching {} into {}",
        manifest.name,
        dir.display()
    ));

    let mut display = Display::new(*ui);
    let fetched = fetch(&manifest, &dir, args.mirror.as_deref(), &mut |event| {
        display.show(event)
    });
    display.clear();
    fetched.with_context(|| format!("cannot fetch {}", manifest.name))?;

    // Absolute, so that the printed command works from any folder.
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    println!("wrote {}", dir.display());
    println!(
        "next: toploss train --data {} --out runs/{}",
        shell_word(&format!("{}:{}", format.name(), dir.display())),
        manifest.name
    );
    Ok(ExitCode::SUCCESS)
}

/// Returns the cache folder: `--dir`, else `$TOPLOSS_DATA_DIR`, else the platform's cache
/// folder (e.g. `~/.cache` on Linux) plus `toploss`.
fn cache_root(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = dir {
        return Ok(dir.to_path_buf());
    }
    if let Some(value) = std::env::var_os(DATA_DIR_ENV)
        && !value.is_empty()
    {
        return Ok(PathBuf::from(value));
    }
    dirs::cache_dir()
        .map(|cache| cache.join(CACHE_SUBFOLDER))
        .ok_or_else(|| {
            anyhow!(
                "no cache folder is known on this system (no home folder found); pass --dir \
                 DIR or set {DATA_DIR_ENV}"
            )
        })
}

/// Quotes `text` for a POSIX shell when it contains characters other than letters, digits
/// and `_ - . / : @ + , =`.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@+,=".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Shows the events of one fetch: a byte bar on a terminal, and one line per file.
struct Display {
    ui: Ui,
    bar: Option<ProgressBar>,
    /// Resume offset and restart flag of the file being downloaded, for its closing line.
    offset: u64,
    restarted: bool,
    url: String,
}

impl Display {
    fn new(ui: Ui) -> Self {
        Self {
            ui,
            bar: None,
            offset: 0,
            restarted: false,
            url: String::new(),
        }
    }

    /// Handles one event; returns `Break` once Ctrl-C was pressed, which stops the download
    /// and keeps its `.part` for the next run.
    fn show(&mut self, event: FetchEvent<'_>) -> ControlFlow<()> {
        match event {
            FetchEvent::AlreadyPresent { file } => {
                self.line(file, "already present, MD5 verified: skipped");
            }
            FetchEvent::Started {
                file,
                url,
                offset,
                total,
                restarted,
            } => {
                self.offset = offset;
                self.restarted = restarted;
                self.url = url.to_string();
                self.start_bar(file, offset, total);
            }
            FetchEvent::Received { bytes, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(bytes);
                }
            }
            FetchEvent::Verified { file, .. } => {
                let mut text = format!("downloaded from {}, MD5 verified", self.url);
                if self.offset > 0 {
                    text.push_str(&format!(" (resumed at byte {})", self.offset));
                }
                if self.restarted {
                    text.push_str(" (the server ignored the range request, so it started over)");
                }
                self.line(file, &text);
            }
            FetchEvent::Extracting { file } => self.start_spinner(file),
            FetchEvent::Extracted { file, members } => {
                self.clear();
                self.ui
                    .status(&format!("  unpacked {members} files from {}", file.name));
            }
        }
        if crate::progress::stop_requested() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Clears any bar and prints `  NAME  SIZE  TEXT` on stderr.
    fn line(&mut self, file: &RemoteFile, text: &str) {
        self.clear();
        let size = file
            .size
            .map(|bytes| DecimalBytes(bytes).to_string())
            .unwrap_or_default();
        self.ui
            .status(&format!("  {:<26} {size:>9}  {text}", file.name));
    }

    fn start_bar(&mut self, file: &RemoteFile, offset: u64, total: Option<u64>) {
        if !self.ui.interactive {
            return;
        }
        self.clear();
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr())
            .with_finish(ProgressFinish::AndClear);
        let style = ProgressStyle::with_template(
            "  {msg:<26} {decimal_bytes:>9}/{decimal_total_bytes:<9} {decimal_bytes_per_sec:>11}  \
             eta {eta:<4} [{wide_bar}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(file.name.clone());
        bar.set_position(offset);
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn start_spinner(&mut self, file: &RemoteFile) {
        if !self.ui.interactive {
            return;
        }
        self.clear();
        let bar = ProgressBar::new_spinner().with_finish(ProgressFinish::AndClear);
        bar.set_message(format!("unpacking {}", file.name));
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    /// Removes the bar or spinner from the screen.
    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_word_quotes_when_needed() {
        assert_eq!(
            shell_word("mnist:/home/a/.cache/toploss/mnist"),
            "mnist:/home/a/.cache/toploss/mnist"
        );
        assert_eq!(shell_word("mnist:/a b/mnist"), "'mnist:/a b/mnist'");
        assert_eq!(shell_word("mnist:/it's"), r"'mnist:/it'\''s'");
    }

    #[test]
    fn dir_flag_wins() {
        let dir = cache_root(Some(Path::new("/data/cache"))).unwrap();
        assert_eq!(dir, Path::new("/data/cache"));
    }
}
