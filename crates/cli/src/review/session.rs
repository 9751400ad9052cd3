//! The review session: what the page shows (candidates, scores, probabilities, images) and the
//! decisions, which are written to `corrections.csv` after every change.

use std::collections::HashMap;
use std::path::PathBuf;

use ndarray::Array2;
use serde_json::{Value, json};
use toploss_data::run::{SplitDynamics, SplitName};
use toploss_data::{Action, Correction, Split, write_corrections};

use crate::top::format_value;

/// Classes listed as the model's top classes for each sample.
const TOP_CLASSES: usize = 3;

/// One sample on the review list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// 1-based rank: the position in the top losses, or the `rank` column of a candidates file.
    pub rank: usize,
    /// Sample id in the reviewed split.
    pub id: usize,
}

/// A request the session rejects, with the HTTP status and the message sent to the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code (4xx for a bad request, 500 when corrections.csv cannot be written).
    pub status: u16,
    /// Message naming the problem and the fix.
    pub message: String,
}

impl ApiError {
    /// Returns a 400 Bad Request error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }
}

/// Outcome of an undo for a sample's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoResult {
    /// The decision made before the undone one is back.
    Restored,
    /// The sample has no decision any more.
    Removed,
}

impl UndoResult {
    fn name(self) -> &'static str {
        match self {
            UndoResult::Restored => "restored",
            UndoResult::Removed => "removed",
        }
    }
}

/// Everything the page reads, fixed for the life of the server.
pub struct ReviewData {
    /// Run folder, as given on the command line.
    pub run: PathBuf,
    /// Reviewed split.
    pub split: SplitName,
    /// Epoch whose values are shown (1-based).
    pub epoch: u32,
    /// Epochs the run finished.
    pub epochs: u32,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// The split's losses, labels and predictions at `epoch`, in id order.
    pub rows: SplitDynamics,
    /// `N x K` softmax probabilities at `epoch`, when the run kept them.
    pub probs: Option<Array2<f32>>,
    /// The split's images (and paths, for folder datasets), truncated to the run's sample count.
    pub images: Split,
    /// The samples to review, in order.
    pub candidates: Vec<Candidate>,
    /// Source of the candidates, for the page header.
    pub source: String,
}

impl ReviewData {
    /// Number of samples in the reviewed split; valid ids are `0..len`.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Returns whether decisions can be made: corrections.csv refers to training-sample ids
    /// only.
    pub fn editable(&self) -> bool {
        self.split == SplitName::Train
    }

    /// Path of the corrections file in the run folder.
    pub fn corrections_path(&self) -> PathBuf {
        self.run.join(super::CORRECTIONS_CSV)
    }

    /// Returns the page's view of sample `id`: scores, top classes and its path.
    fn sample_json(&self, rank: usize, id: usize) -> Value {
        let label = self.rows.label[id];
        let predicted = self.rows.predicted[id];
        let top = self.probs.as_ref().map(|probs| {
            top_classes(probs.row(id).as_slice().unwrap_or(&[]), TOP_CLASSES)
                .into_iter()
                .map(|(class, p)| json!({"class": class, "p": p}))
                .collect::<Vec<_>>()
        });
        json!({
            "rank": rank,
            "id": id,
            "label": label,
            "predicted": predicted,
            "loss": format_value(self.rows.loss[id]),
            "p_label": format_value(self.rows.p_label[id]),
            "p_predicted": format_value(self.rows.p_predicted[id]),
            "path": self.images.path(id),
            "top": top,
        })
    }
}

/// Returns the `n` most probable classes of one probability row, most probable first; equal
/// probabilities rank by lower class index.
fn top_classes(row: &[f32], n: usize) -> Vec<(usize, f32)> {
    let mut classes: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
    classes.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    classes.truncate(n);
    classes
}

/// The decisions and their undo history. Every change is written to corrections.csv before it
/// is acknowledged; the caller keeps the session behind a mutex, so writes never interleave.
pub struct Decisions {
    /// One entry per decided id, in the order the ids were first decided (or read from file).
    entries: Vec<Correction>,
    /// For each id, the decisions it had before each change made by this server, oldest first
    /// (`None`: no decision). Kept in memory only.
    history: HashMap<u32, Vec<Option<Correction>>>,
}

impl Decisions {
    /// Starts from the entries of an existing corrections file (or none).
    pub fn new(entries: Vec<Correction>) -> Self {
        Self {
            entries,
            history: HashMap::new(),
        }
    }

    /// Number of decided ids, candidates or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns the decision for `id`, if any.
    pub fn get(&self, id: u32) -> Option<&Correction> {
        self.entries.iter().find(|entry| entry.id == id)
    }

    /// Sets the decision of `correction.id`, writes the file, and records the previous decision
    /// for undo. When the write fails, the previous state stays in place.
    pub fn decide(&mut self, data: &ReviewData, correction: Correction) -> Result<(), ApiError> {
        let id = correction.id;
        let previous = self.get(id).cloned();
        if previous.as_ref() == Some(&correction) {
            return Ok(());
        }
        let before = self.entries.clone();
        match self.entries.iter_mut().find(|entry| entry.id == id) {
            Some(entry) => *entry = correction,
            None => self.entries.push(correction),
        }
        if let Err(error) = self.write(data) {
            self.entries = before;
            return Err(error);
        }
        self.history.entry(id).or_default().push(previous);
        Ok(())
    }

    /// Undoes the last change of `id`: restores the decision it had before, when this server
    /// made that change, and otherwise removes the decision (after a restart the history is
    /// empty, so undo then removes what the file holds).
    pub fn undo(&mut self, data: &ReviewData, id: u32) -> Result<UndoResult, ApiError> {
        let popped = self.history.get_mut(&id).and_then(Vec::pop);
        let from_history = popped.is_some();
        let current = self.get(id).cloned();
        let target = match (popped, current) {
            (Some(previous), _) => previous,
            (None, Some(_)) => None,
            (None, None) => {
                return Err(ApiError {
                    status: 409,
                    message: format!("id {id} has no decision to undo"),
                });
            }
        };

        let before = self.entries.clone();
        let result = match &target {
            Some(correction) => {
                match self.entries.iter_mut().find(|entry| entry.id == id) {
                    Some(entry) => *entry = correction.clone(),
                    None => self.entries.push(correction.clone()),
                }
                UndoResult::Restored
            }
            None => {
                self.entries.retain(|entry| entry.id != id);
                UndoResult::Removed
            }
        };
        if let Err(error) = self.write(data) {
            self.entries = before;
            // Put the popped step back, so that a retry undoes the same change.
            if from_history {
                self.history.entry(id).or_default().push(target);
            }
            return Err(error);
        }
        Ok(result)
    }

    /// Replaces corrections.csv with the current entries (atomically: temp file + rename).
    fn write(&self, data: &ReviewData) -> Result<(), ApiError> {
        let path = data.corrections_path();
        write_corrections(&path, &self.entries, &data.classes).map_err(|error| {
            tracing::error!("cannot save the decision: {error}");
            ApiError {
                status: 500,
                message: format!("cannot save the decision: {error}"),
            }
        })
    }
}

/// Returns the JSON of one decision, or null.
pub fn decision_json(decision: Option<&Correction>, classes: &[String]) -> Value {
    let Some(decision) = decision else {
        return Value::Null;
    };
    let (new_label, new_label_name) = match decision.action {
        Action::Relabel(label) => (json!(label), json!(classes[label as usize])),
        Action::Keep | Action::Discard => (Value::Null, Value::Null),
    };
    json!({
        "action": decision.action.name(),
        "new_label": new_label,
        "new_label_name": new_label_name,
        "note": decision.note,
    })
}

/// Returns the whole page state: run, classes and every candidate with its decision.
pub fn state_json(data: &ReviewData, decisions: &Decisions) -> Value {
    let candidates: Vec<Value> = data
        .candidates
        .iter()
        .map(|candidate| {
            let mut sample = data.sample_json(candidate.rank, candidate.id);
            sample["decision"] = decision_json(decisions.get(candidate.id as u32), &data.classes);
            sample
        })
        .collect();
    let image = &data.images.shape;
    json!({
        "run": data.run.display().to_string(),
        "split": data.split.as_str(),
        "epoch": data.epoch,
        "epochs": data.epochs,
        "editable": data.editable(),
        "source": data.source,
        "classes": data.classes,
        "corrections_file": data.corrections_path().display().to_string(),
        "decided": decisions.len(),
        "has_probs": data.probs.is_some(),
        "image": {"channels": image.channels, "height": image.height, "width": image.width},
        "candidates": candidates,
    })
}

/// Returns the reply to a decision or an undo: the id's decision and the total count.
pub fn change_json(data: &ReviewData, decisions: &Decisions, id: u32) -> Value {
    json!({
        "id": id,
        "decision": decision_json(decisions.get(id), &data.classes),
        "decided": decisions.len(),
    })
}

/// Returns the reply to an undo.
pub fn undo_json(data: &ReviewData, decisions: &Decisions, id: u32, result: UndoResult) -> Value {
    let mut reply = change_json(data, decisions, id);
    reply["result"] = json!(result.name());
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use toploss_data::ImageShape;

    fn data(dir: &std::path::Path) -> ReviewData {
        let n = 4;
        ReviewData {
            run: dir.to_path_buf(),
            split: SplitName::Train,
            epoch: 1,
            epochs: 1,
            classes: vec!["cat".into(), "dög".into(), "猫".into()],
            rows: SplitDynamics {
                label: vec![0, 1, 2, 0],
                predicted: vec![1, 1, 2, 2],
                loss: vec![1.0, 0.1, f32::NAN, 2.0],
                p_label: vec![0.2; n],
                p_predicted: vec![0.7; n],
                margin: vec![0.0; n],
                train_margin: vec![None; n],
            },
            probs: None,
            images: Split {
                images: vec![0; n],
                labels: vec![0, 1, 2, 0],
                shape: ImageShape {
                    channels: 1,
                    height: 1,
                    width: 1,
                },
                paths: None,
            },
            candidates: vec![Candidate { rank: 1, id: 3 }],
            source: "test".into(),
        }
    }

    fn correction(id: u32, action: Action) -> Correction {
        Correction {
            id,
            action,
            note: String::new(),
            path: None,
        }
    }

    fn file(dir: &std::path::Path) -> String {
        std::fs::read_to_string(dir.join("corrections.csv")).unwrap()
    }

    #[test]
    fn top_classes_orders_by_probability_then_index() {
        // Classes 1 and 3 tie at 0.3; the lower index comes first.
        let row = [0.1, 0.3, 0.05, 0.3, 0.25];
        assert_eq!(top_classes(&row, 3), vec![(1, 0.3), (3, 0.3), (4, 0.25)]);
        assert_eq!(top_classes(&[1.0], 3), vec![(0, 1.0)]);
    }

    #[test]
    fn decide_writes_file_and_replaces_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let data = data(dir.path());
        let mut decisions = Decisions::new(Vec::new());
        decisions
            .decide(&data, correction(3, Action::Relabel(2)))
            .unwrap();
        decisions
            .decide(&data, correction(1, Action::Discard))
            .unwrap();
        // Changing id 3 keeps its line first.
        decisions
            .decide(&data, correction(3, Action::Keep))
            .unwrap();
        assert_eq!(
            file(dir.path()),
            "id,action,new_label,note\n3,keep,,\n1,discard,,\n"
        );
    }

    #[test]
    fn undo_restores_then_removes() {
        let dir = tempfile::tempdir().unwrap();
        let data = data(dir.path());
        let mut decisions = Decisions::new(Vec::new());
        decisions
            .decide(&data, correction(0, Action::Keep))
            .unwrap();
        decisions
            .decide(&data, correction(0, Action::Relabel(2)))
            .unwrap();
        // Class 2 is written by its name.
        assert_eq!(
            file(dir.path()),
            "id,action,new_label,note\n0,relabel,猫,\n"
        );

        assert_eq!(decisions.undo(&data, 0).unwrap(), UndoResult::Restored);
        assert_eq!(file(dir.path()), "id,action,new_label,note\n0,keep,,\n");
        assert_eq!(decisions.undo(&data, 0).unwrap(), UndoResult::Removed);
        assert_eq!(file(dir.path()), "id,action,new_label,note\n");

        let error = decisions.undo(&data, 0).unwrap_err();
        assert_eq!(error.status, 409);
        assert!(error.message.contains("id 0"), "{}", error.message);
    }

    #[test]
    fn undo_of_loaded_decision_removes_it() {
        // A decision read from an existing file has no history in this session.
        let dir = tempfile::tempdir().unwrap();
        let data = data(dir.path());
        let mut decisions = Decisions::new(vec![correction(2, Action::Discard)]);
        assert_eq!(decisions.undo(&data, 2).unwrap(), UndoResult::Removed);
        assert!(decisions.get(2).is_none());
    }

    #[test]
    fn failed_write_keeps_previous_state() {
        // The run folder does not exist, so the temporary file cannot be created.
        let dir = tempfile::tempdir().unwrap();
        let data = data(&dir.path().join("missing"));
        let mut decisions = Decisions::new(vec![correction(2, Action::Discard)]);
        let error = decisions
            .decide(&data, correction(2, Action::Keep))
            .unwrap_err();
        assert_eq!(error.status, 500);
        assert_eq!(decisions.get(2).unwrap().action, Action::Discard);
        assert!(decisions.undo(&data, 2).is_err());
        assert_eq!(decisions.get(2).unwrap().action, Action::Discard);
    }

    #[test]
    fn state_lists_candidates_with_decisions() {
        let dir = tempfile::tempdir().unwrap();
        let data = data(dir.path());
        let mut decisions = Decisions::new(Vec::new());
        decisions
            .decide(&data, correction(3, Action::Relabel(1)))
            .unwrap();
        let state = state_json(&data, &decisions);
        let candidate = &state["candidates"][0];
        assert_eq!(candidate["id"], 3);
        assert_eq!(candidate["loss"], "2.0000");
        assert_eq!(candidate["decision"]["action"], "relabel");
        assert_eq!(candidate["decision"]["new_label_name"], "dög");
        assert_eq!(state["editable"], true);
        // Without a probabilities file there are no top classes.
        assert_eq!(candidate["top"], Value::Null);
    }
}
