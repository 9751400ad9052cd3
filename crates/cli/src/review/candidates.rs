//! Candidate lists for `toploss review`: the top losses, or the ids of a ranked CSV file.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use toploss_core::rank::{Order, top_k};
use toploss_data::Split;

use super::session::Candidate;

/// Returns the `k` highest losses as candidates, ranked 1, 2, ... in the pinned order (NaN
/// first, then +inf, ties by lower id).
pub fn top_loss_candidates(loss: &[f32], k: usize) -> anyhow::Result<Vec<Candidate>> {
    let top = top_k(loss, k, Order::Largest)?;
    Ok(top
        .ids
        .into_iter()
        .enumerate()
        .map(|(position, id)| Candidate {
            rank: position + 1,
            id,
        })
        .collect())
}

/// Reads the candidates of a ranked CSV file (`issues.csv`, `top --csv`, or any file with an
/// `id` column), in file order.
///
/// The `rank` column is used when present, else the row number. Ids must lie in `split` and
/// appear once. When the file has a `path` column (folder datasets), each path must be the
/// path of its id in `split`, so that a file from another dataset is caught.
pub fn read_candidates(path: &Path, split: &Split) -> anyhow::Result<Vec<Candidate>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read candidates file {}", path.display()))?;
    parse_candidates(path, &text, split)
}

fn parse_candidates(path: &Path, text: &str, split: &Split) -> anyhow::Result<Vec<Candidate>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .with_context(|| format!("{}: invalid CSV header", path.display()))?
        .clone();
    let column = |name: &str| header.iter().position(|field| field == name);
    let Some(id_column) = column("id") else {
        bail!(
            "{}: no `id` column in the header {:?}; pass an issues.csv or a `toploss top --csv` file",
            path.display(),
            header.iter().collect::<Vec<_>>().join(",")
        );
    };
    let rank_column = column("rank");
    let path_column = column("path");

    let mut candidates = Vec::new();
    let mut line_of_id: HashMap<usize, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: invalid CSV", path.display()))?;
        let line = record.position().map_or(0, |position| position.line());
        let field = |position: usize| record.get(position).unwrap_or_default();

        let id_text = field(id_column);
        let id: usize = id_text.parse().map_err(|_| {
            anyhow::anyhow!(
                "{}, line {line}: invalid id {id_text:?}: expected a non-negative integer",
                path.display()
            )
        })?;
        if id >= split.len() {
            bail!(
                "{}, line {line}: id {id} is out of range: the split has {} samples (ids 0 to {}); \
                 is the file from another split or run? Pass the matching --split",
                path.display(),
                split.len(),
                split.len().saturating_sub(1)
            );
        }
        if let Some(&first_line) = line_of_id.get(&id) {
            bail!(
                "{}, line {line}: id {id} appears twice (first on line {first_line})",
                path.display()
            );
        }
        line_of_id.insert(id, line);

        if let (Some(position), Some(expected)) = (path_column, split.path(id)) {
            let found = field(position);
            if found != expected {
                bail!(
                    "{}, line {line}: id {id} has path {found:?}, but in this run's dataset id \
                     {id} is {expected:?}; the file comes from another dataset",
                    path.display()
                );
            }
        }

        let rank = match rank_column {
            Some(position) => {
                let rank_text = field(position);
                rank_text.parse().ok().filter(|&rank| rank >= 1).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}, line {line}: invalid rank {rank_text:?}: expected an integer, 1 or more",
                        path.display()
                    )
                })?
            }
            None => candidates.len() + 1,
        };
        candidates.push(Candidate { rank, id });
    }
    if candidates.is_empty() {
        bail!(
            "{} lists no candidates; rerun `toploss issues` or review the top losses without --candidates",
            path.display()
        );
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toploss_data::ImageShape;

    fn split(n: usize, paths: bool) -> Split {
        Split {
            images: vec![0; n],
            labels: vec![0; n],
            shape: ImageShape {
                channels: 1,
                height: 1,
                width: 1,
            },
            paths: paths.then(|| (0..n).map(|id| format!("cat/{id}.png")).collect()),
        }
    }

    fn parse(text: &str, split: &Split) -> anyhow::Result<Vec<Candidate>> {
        parse_candidates(Path::new("issues.csv"), text, split)
    }

    #[test]
    fn issues_file_keeps_file_order_and_ranks() {
        let text = "rank,id,label,suggested,score\n1,7,1,2,-3.5\n2,0,4,4,-1\n";
        let candidates = parse(text, &split(10, false)).unwrap();
        assert_eq!(
            candidates,
            vec![Candidate { rank: 1, id: 7 }, Candidate { rank: 2, id: 0 }]
        );
    }

    #[test]
    fn file_without_rank_counts_rows() {
        let candidates = parse("id\n5\n3\n", &split(10, false)).unwrap();
        assert_eq!(candidates[1], Candidate { rank: 2, id: 3 });
    }

    #[test]
    fn bad_rows_name_the_line() {
        let cases = [
            ("rank,id\n1,10\n", "line 2: id 10 is out of range"),
            ("rank,id\n1,x\n", "line 2: invalid id \"x\""),
            (
                "rank,id\n1,3\n2,4\n3,3\n",
                "line 4: id 3 appears twice (first on line 2)",
            ),
            ("rank,id\n0,3\n", "line 2: invalid rank \"0\""),
            ("rank,label\n1,3\n", "no `id` column"),
            ("rank,id\n", "lists no candidates"),
        ];
        for (text, expected) in cases {
            let message = parse(text, &split(10, false)).unwrap_err().to_string();
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn path_column_must_match_the_dataset() {
        let split = split(3, true);
        assert!(parse("rank,id,path\n1,2,cat/2.png\n", &split).is_ok());
        let message = parse("rank,id,path\n1,2,cat/1.png\n", &split)
            .unwrap_err()
            .to_string();
        assert!(message.contains("another dataset"), "{message}");
    }

    #[test]
    fn top_losses_rank_nan_first() {
        let candidates = top_loss_candidates(&[0.5, f32::NAN, 2.0, 0.1], 3).unwrap();
        let ids: Vec<usize> = candidates.iter().map(|c| c.id).collect();
        // NaN (id 1) first, then 2.0 (id 2), then 0.5 (id 0).
        assert_eq!(ids, vec![1, 2, 0]);
        assert_eq!(candidates[2].rank, 3);
    }
}
