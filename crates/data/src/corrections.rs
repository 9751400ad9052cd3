//! `corrections.csv`: keep / relabel / discard decisions by training-sample id.
//!
//! The file is CSV with the header `id,action,new_label,note`, plus an optional `path`
//! column that folder datasets use to name each sample's file. Columns may come in any
//! order. Each following line contains one decision:
//!
//! - `id`: the 0-based position of the sample in the training split.
//! - `action`: `keep`, `relabel` or `discard` (ASCII case is ignored).
//! - `new_label`: for `relabel`, the new class as a class name or a 0-based class index.
//!   A value that equals a class name is read as that name first, so for a class list that
//!   itself contains digits (MNIST's "0" to "9") both readings agree. The column must be empty
//!   for `keep` and `discard`.
//! - `note`: free text. Quote it (`"..."`, with `""` for a quote) when it contains a comma,
//!   a quote or a line break.
//!
//! Blank lines are skipped, surrounding spaces are trimmed from every field, and a UTF-8
//! byte-order mark (as written by spreadsheet programs) is ignored. Line numbers in errors
//! count the header as line 1. An id may appear on one line only.
//!
//! ```text
//! id,action,new_label,note
//! 59915,relabel,7,"looks like a 7, not a 4"
//! 7080,discard,,not a digit
//! 42,keep,,
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// The required columns, in the order [`write_corrections`] writes them.
pub const COLUMNS: [&str; 4] = ["id", "action", "new_label", "note"];

/// The optional column of folder datasets: the sample's relative file path.
pub const PATH_COLUMN: &str = "path";

/// Most class names that an error message lists before it shortens the list.
const MAX_LISTED_CLASSES: usize = 12;

/// Decision for one training sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Leave the sample as it is (a reviewed sample whose label is right).
    Keep,
    /// Train with this class index in place of the given label.
    Relabel(u32),
    /// Leave the sample out of training.
    Discard,
}

impl Action {
    /// Returns the name used in the `action` column.
    pub fn name(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Relabel(_) => "relabel",
            Action::Discard => "discard",
        }
    }
}

/// One line of a corrections file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The training-sample id.
    pub id: u32,
    /// The decision.
    pub action: Action,
    /// Free-text note; empty when there is none.
    pub note: String,
    /// The sample's relative file path, for folder datasets.
    pub path: Option<String>,
}

/// The decisions of a corrections file, grouped by action, each group in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corrections {
    /// `(id, new_label)` pairs.
    pub relabel: Vec<(u32, u32)>,
    /// Ids to leave out of training.
    pub discard: Vec<u32>,
    /// Ids reviewed and kept as they are.
    pub keep: Vec<u32>,
    /// Every line, in file order.
    pub entries: Vec<Correction>,
}

impl Corrections {
    /// Number of decisions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns true when the file contains no decisions.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads and checks a corrections file.
///
/// `classes` is the dataset's class list and `train_len` the number of training samples.
/// Every id must be below `train_len` and every new label must name a class. Checking the
/// file against a run's dataset fingerprint is up to the caller, which knows the run folder.
pub fn read_corrections(
    path: &Path,
    classes: &[String],
    train_len: usize,
) -> Result<Corrections, Error> {
    let text = fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let corrections = parse_corrections(path, &text, classes, train_len)?;
    tracing::debug!(
        path = %path.display(),
        relabel = corrections.relabel.len(),
        discard = corrections.discard.len(),
        keep = corrections.keep.len(),
        "read corrections"
    );
    Ok(corrections)
}

/// Parses the text of a corrections file; `path` is used in error messages only.
pub fn parse_corrections(
    path: &Path,
    text: &str,
    classes: &[String],
    train_len: usize,
) -> Result<Corrections, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();

    // Header.
    let header = match records.next() {
        Some(record) => record.map_err(|source| csv_error(path, source))?,
        None => {
            return Err(Error::CorrectionsHeader {
                path: path.to_path_buf(),
                found: String::new(),
                reason: "the file is empty".to_string(),
            });
        }
    };
    let columns = Columns::from_header(path, &header)?;

    // One decision per line.
    let mut corrections = Corrections::default();
    let mut first_line_of_id: HashMap<u32, u64> = HashMap::new();
    for record in records {
        let record = record.map_err(|source| csv_error(path, source))?;
        let line = record.position().map_or(0, |position| position.line());
        let line_error = |reason: String| Error::CorrectionsLine {
            path: path.to_path_buf(),
            line,
            reason,
        };

        if record.len() != columns.count {
            return Err(line_error(format!(
                "found {} fields, the header has {}; quote a note that contains a comma",
                record.len(),
                columns.count
            )));
        }
        let correction = columns.parse_record(&record, classes).map_err(line_error)?;
        if correction.id as usize >= train_len {
            return Err(Error::CorrectionIdOutOfRange {
                path: path.to_path_buf(),
                line,
                id: correction.id,
                train_len,
            });
        }

        if let Some(&first_line) = first_line_of_id.get(&correction.id) {
            return Err(Error::DuplicateId {
                path: path.to_path_buf(),
                id: correction.id,
                first_line,
                second_line: line,
            });
        }
        first_line_of_id.insert(correction.id, line);

        match correction.action {
            Action::Keep => corrections.keep.push(correction.id),
            Action::Relabel(label) => corrections.relabel.push((correction.id, label)),
            Action::Discard => corrections.discard.push(correction.id),
        }
        corrections.entries.push(correction);
    }
    Ok(corrections)
}

/// Positions of the columns in the header.
struct Columns {
    id: usize,
    action: usize,
    new_label: usize,
    note: usize,
    path: Option<usize>,
    count: usize,
}

impl Columns {
    fn from_header(path: &Path, header: &csv::StringRecord) -> Result<Self, Error> {
        let invalid = |reason: String| Error::CorrectionsHeader {
            path: path.to_path_buf(),
            found: header.iter().collect::<Vec<_>>().join(","),
            reason,
        };

        let mut positions: HashMap<&str, usize> = HashMap::new();
        for (position, name) in header.iter().enumerate() {
            if !COLUMNS.contains(&name) && name != PATH_COLUMN {
                return Err(invalid(format!("unknown column {name:?}")));
            }
            if positions.insert(name, position).is_some() {
                return Err(invalid(format!("column {name:?} appears twice")));
            }
        }
        let required = |name: &str| {
            positions
                .get(name)
                .copied()
                .ok_or_else(|| invalid(format!("missing column {name:?}")))
        };

        Ok(Self {
            id: required("id")?,
            action: required("action")?,
            new_label: required("new_label")?,
            note: required("note")?,
            path: positions.get(PATH_COLUMN).copied(),
            count: header.len(),
        })
    }

    /// Parses one record; the error is the reason, without file and line.
    fn parse_record(
        &self,
        record: &csv::StringRecord,
        classes: &[String],
    ) -> Result<Correction, String> {
        let field = |position: usize| record.get(position).unwrap_or_default();

        // Id.
        let id_text = field(self.id);
        let id: u32 = id_text.parse().map_err(|_| {
            format!("invalid id {id_text:?}: expected a sample id, a non-negative integer")
        })?;

        // Action and label.
        let action_text = field(self.action);
        let label_text = field(self.new_label);
        let action = match action_text.to_ascii_lowercase().as_str() {
            "relabel" if label_text.is_empty() => {
                return Err(format!(
                    "relabel of id {id} has no new_label; give a class name or index"
                ));
            }
            "relabel" => {
                let label = resolve_label(label_text, classes).ok_or_else(|| {
                    format!(
                        "new_label {label_text:?} is not a class: expected a class name ({}) or \
                         an index 0..{}",
                        list_classes(classes),
                        classes.len()
                    )
                })?;
                Action::Relabel(label)
            }
            "keep" | "discard" if !label_text.is_empty() => {
                return Err(format!(
                    "{action_text} of id {id} has new_label {label_text:?}; leave new_label \
                     empty or use relabel"
                ));
            }
            "keep" => Action::Keep,
            "discard" => Action::Discard,
            _ => {
                return Err(format!(
                    "unknown action {action_text:?}: expected keep, relabel or discard"
                ));
            }
        };

        // A quote left open swallows the lines after it into the note. A note line that reads
        // like a record (an id and a comma) is taken as that mistake.
        let note = field(self.note);
        let swallowed = note.lines().skip(1).find(|line| {
            let digits = line
                .trim_start()
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            digits > 0 && line.trim_start().as_bytes().get(digits) == Some(&b',')
        });
        if let Some(swallowed) = swallowed {
            return Err(format!(
                "the note of id {id} contains the line {swallowed:?}, so a quote is probably \
                 not closed and the lines after it were read as part of the note; close the quote"
            ));
        }

        Ok(Correction {
            id,
            action,
            note: note.to_string(),
            path: self
                .path
                .map(|position| field(position).to_string())
                .filter(|path| !path.is_empty()),
        })
    }
}

/// Resolves a `new_label` value: a class name first, then a 0-based class index.
pub fn resolve_label(value: &str, classes: &[String]) -> Option<u32> {
    if let Some(index) = classes.iter().position(|class| class == value) {
        return Some(index as u32);
    }
    value
        .parse::<u32>()
        .ok()
        .filter(|&index| (index as usize) < classes.len())
}

/// Lists class names for an error message, shortened for long lists.
fn list_classes(classes: &[String]) -> String {
    let mut listed: Vec<&str> = classes
        .iter()
        .take(MAX_LISTED_CLASSES)
        .map(String::as_str)
        .collect();
    if classes.len() > MAX_LISTED_CLASSES {
        listed.push("...");
    }
    listed.join(", ")
}

/// Turns a CSV parser error into an error that names the file and, when known, the line.
fn csv_error(path: &Path, source: csv::Error) -> Error {
    match source.position() {
        Some(position) => Error::CorrectionsLine {
            path: path.to_path_buf(),
            line: position.line(),
            reason: format!("invalid CSV: {source}"),
        },
        None => Error::Csv {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Writes `entries` to `path` as a corrections file, replacing it atomically.
///
/// The file is written to a temporary file in the same folder and then renamed over `path`,
/// so a reader never sees a half-written file. New labels are written as class names, or as
/// indices where a name would read back as another class. The `path` column is written when
/// any entry has a path. Entries with a repeated id or a label outside `classes` are
/// rejected before anything is written.
pub fn write_corrections(
    path: &Path,
    entries: &[Correction],
    classes: &[String],
) -> Result<(), Error> {
    // Check everything first, so that an invalid entry leaves the old file in place.
    let mut seen = HashMap::new();
    for entry in entries {
        let invalid = |reason: String| Error::InvalidCorrection {
            path: path.to_path_buf(),
            id: entry.id,
            reason,
        };
        if seen.insert(entry.id, ()).is_some() {
            return Err(invalid("the id appears twice".to_string()));
        }
        if let Action::Relabel(label) = entry.action
            && label as usize >= classes.len()
        {
            return Err(invalid(format!(
                "new label {label} is out of range: there are {} classes",
                classes.len()
            )));
        }
    }

    // Write the temporary file.
    let write_error = |source: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = crate::run::replaced_file(path).map_err(write_error)?;
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Same mode as a file written directly, not tempfile's owner-only default.
    let mut temp = crate::run::new_temp_file(&dir).map_err(write_error)?;
    let with_paths = entries.iter().any(|entry| entry.path.is_some());
    {
        let mut writer = csv::Writer::from_writer(temp.as_file_mut());
        let mut header = COLUMNS.to_vec();
        if with_paths {
            header.push(PATH_COLUMN);
        }
        writer
            .write_record(&header)
            .map_err(|e| write_error(e.into()))?;

        for entry in entries {
            let id = entry.id.to_string();
            let label = match entry.action {
                Action::Relabel(label) => label_text(label, classes),
                Action::Keep | Action::Discard => String::new(),
            };
            let mut record = vec![
                id.as_str(),
                entry.action.name(),
                label.as_str(),
                entry.note.as_str(),
            ];
            if with_paths {
                record.push(entry.path.as_deref().unwrap_or_default());
            }
            writer
                .write_record(&record)
                .map_err(|e| write_error(e.into()))?;
        }
        writer.flush().map_err(write_error)?;
    }
    temp.as_file().sync_all().map_err(write_error)?;

    // Move it into place.
    temp.persist(&target).map_err(|e| write_error(e.error))?;
    tracing::debug!(path = %path.display(), entries = entries.len(), "wrote corrections");
    Ok(())
}

/// Returns the text written for a new label: its class name when that reads back as the
/// same index, else the index.
fn label_text(label: u32, classes: &[String]) -> String {
    let name = &classes[label as usize];
    if resolve_label(name, classes) == Some(label) {
        name.clone()
    } else {
        label.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fashion() -> Vec<String> {
        crate::DatasetFormat::FashionMnist.fixed_classes().unwrap()
    }

    fn parse(text: &str) -> Result<Corrections, Error> {
        parse_corrections(Path::new("c.csv"), text, &fashion(), 100)
    }

    fn message(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parse_good_file() {
        let text = "\u{feff}id,action,new_label,note\n\
                    3,relabel,Sneaker,\"a shoe, clearly \"\"sneaker\"\"\"\n\
                    \n\
                    5,Discard,,\n\
                    7,keep,,fine\n\
                    9,relabel,0,by index\n";
        let corrections = parse(text).unwrap();
        // Sneaker is class 7 of Fashion-MNIST; "0" is read as index 0 (T-shirt/top).
        assert_eq!(corrections.relabel, vec![(3, 7), (9, 0)]);
        assert_eq!(corrections.discard, vec![5]);
        assert_eq!(corrections.keep, vec![7]);
        assert_eq!(corrections.entries[0].note, "a shoe, clearly \"sneaker\"");
        assert_eq!(corrections.len(), 4);
    }

    #[test]
    fn parse_rejects_unclosed_quote() {
        // The quote opened on line 2 is never closed, so line 3 would become part of the note.
        let error = message("id,action,new_label,note\n5,relabel,3,\"open\n6,discard,,\n");
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("quote"), "{error}");
    }

    #[test]
    fn parse_columns_any_order_with_path() {
        let text = "path,note,id,new_label,action\nimgs/a.png,,4,Bag,relabel\n";
        let corrections = parse(text).unwrap();
        assert_eq!(corrections.relabel, vec![(4, 8)]);
        assert_eq!(corrections.entries[0].path.as_deref(), Some("imgs/a.png"));
    }

    #[test]
    fn parse_header_only_is_empty() {
        assert!(parse("id,action,new_label,note\n").unwrap().is_empty());
    }

    #[test]
    fn parse_wrong_header() {
        let text = "id,action,label,note\n1,keep,,\n";
        let message = message(text);
        assert!(
            message.starts_with("c.csv, line 1: invalid header"),
            "{message}"
        );
        assert!(message.contains("unknown column \"label\""), "{message}");

        let message = self::message("id,action,new_label\n");
        assert!(message.contains("missing column \"note\""), "{message}");

        let message = self::message("");
        assert!(message.contains("the file is empty"), "{message}");
    }

    #[test]
    fn parse_unknown_id_names_line() {
        // train_len is 100, so ids 0..100 are valid and 100 is not.
        let message = message("id,action,new_label,note\n1,keep,,\n100,discard,,\n");
        assert!(
            message.starts_with("c.csv, line 3: id 100 is out of range"),
            "{message}"
        );
        assert!(message.contains("100 samples"), "{message}");
    }

    #[test]
    fn parse_invalid_id_names_line() {
        let message = message("id,action,new_label,note\n-1,keep,,\n");
        assert!(
            message.starts_with("c.csv, line 2: invalid id \"-1\""),
            "{message}"
        );
    }

    #[test]
    fn parse_unknown_class_names_line() {
        // Index 10 is past the 10 Fashion-MNIST classes (0..10).
        for label in ["Sneeker", "10"] {
            let text =
                format!("id,action,new_label,note\n1,keep,,\n2,keep,,\n3,relabel,{label},\n");
            let message = message(&text);
            assert!(
                message.starts_with(&format!(
                    "c.csv, line 4: new_label \"{label}\" is not a class"
                )),
                "{message}"
            );
            assert!(message.contains("Ankle boot"), "{message}");
        }
    }

    #[test]
    fn parse_unknown_action_names_line() {
        let message = message("id,action,new_label,note\n1,delete,,\n");
        assert!(
            message.starts_with("c.csv, line 2: unknown action \"delete\""),
            "{message}"
        );
    }

    #[test]
    fn parse_relabel_without_label_names_line() {
        let message = message("id,action,new_label,note\n1,keep,,\n2,relabel,,oops\n");
        assert!(
            message.starts_with("c.csv, line 3: relabel of id 2 has no new_label"),
            "{message}"
        );
    }

    #[test]
    fn parse_discard_with_label_rejected() {
        let message = message("id,action,new_label,note\n1,discard,Bag,\n");
        assert!(
            message.starts_with("c.csv, line 2: discard of id 1"),
            "{message}"
        );
    }

    #[test]
    fn parse_duplicate_id_names_both_lines() {
        // Line 3 is blank and skipped, but still counted.
        let text = "id,action,new_label,note\n4,keep,,\n\n5,keep,,\n4,discard,,\n";
        let err = parse(text).unwrap_err();
        assert!(matches!(
            err,
            Error::DuplicateId {
                id: 4,
                first_line: 2,
                second_line: 5,
                ..
            }
        ));
        let message = err.to_string();
        assert!(message.contains("line 5: id 4"), "{message}");
        assert!(message.contains("on line 2"), "{message}");
    }

    #[test]
    fn parse_unquoted_comma_names_line() {
        let message = message("id,action,new_label,note\n1,keep,,fine, really\n");
        assert!(
            message.starts_with("c.csv, line 2: found 5 fields, the header has 4"),
            "{message}"
        );
    }

    #[test]
    fn parse_multiline_note_keeps_line_numbers() {
        // The quoted note of id 1 spans lines 2 and 3, so the next record starts on line 4.
        let text = "id,action,new_label,note\n1,keep,,\"two\nlines\"\n1,keep,,\n";
        let err = parse(text).unwrap_err();
        assert!(matches!(
            err,
            Error::DuplicateId {
                first_line: 2,
                second_line: 4,
                ..
            }
        ));
    }

    #[test]
    fn resolve_label_prefers_names() {
        // A class list whose names are digits in another order: the name wins.
        let classes: Vec<String> = ["1", "0", "x"].iter().map(|s| s.to_string()).collect();
        assert_eq!(resolve_label("1", &classes), Some(0));
        assert_eq!(resolve_label("2", &classes), Some(2));
        assert_eq!(resolve_label("3", &classes), None);
    }

    #[test]
    fn label_text_falls_back_to_index() {
        // Classes 1 and 2 are both named "0", and "0" reads back as class 1, the first
        // match. So class 1 is written by name and class 2 by its index "2".
        let classes: Vec<String> = ["a", "0", "0"].iter().map(|s| s.to_string()).collect();
        assert_eq!(label_text(1, &classes), "0");
        assert_eq!(label_text(2, &classes), "2");
    }
}
