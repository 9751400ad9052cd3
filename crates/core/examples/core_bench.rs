//! Rust side of `bench/core.sh`: times toploss-core's top-k and confident learning on the
//! arrays written by `bench/core_data.py`, writes each result to `OUT_DIR/rust_*.npy` and
//! prints the timings as one JSON object.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p toploss-core --example core_bench -- \
//!     DATA_DIR OUT_DIR [REPEATS] [K] [ONLY]
//! ```
//!
//! `ONLY`, if given, runs just the operations whose name contains it (for profiling).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use ndarray::{Array1, Array2};
use ndarray_npy::{read_npy, write_npy};
use toploss_core::confident::{
    Filter, LabelIssueOptions, Ranking, compute_confident_joint, find_label_issues_ranked,
};
use toploss_core::rank::{Order, top_k};

/// Runs `function` `repeats` times; returns the seconds of each run and the last result.
fn timed<R>(repeats: usize, mut function: impl FnMut() -> R) -> (Vec<f64>, R) {
    let mut seconds = Vec::with_capacity(repeats);
    let mut result = None;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        result = Some(function());
        seconds.push(start.elapsed().as_secs_f64());
    }
    (seconds, result.expect("at least one run"))
}

fn read<T: ndarray_npy::ReadableElement, D: ndarray::Dimension>(
    path: &Path,
) -> Result<ndarray::Array<T, D>, String> {
    read_npy(path).map_err(|error| {
        format!(
            "cannot read {}: {error}; run bench/core_data.py to write it",
            path.display()
        )
    })
}

fn write_ids(path: &Path, ids: &[usize]) -> Result<(), String> {
    let ids: Array1<i64> = ids.iter().map(|&id| id as i64).collect();
    write_npy(path, &ids).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn run(data: &Path, out: &Path, repeats: usize, k: usize, only: &str) -> Result<String, String> {
    let probs: Array2<f32> = read(&data.join("pred_probs.npy"))?;
    let labels: Array1<i64> = read(&data.join("labels.npy"))?;
    let losses: Array1<f32> = read(&data.join("losses.npy"))?;
    let num_classes = probs.ncols();
    let probs = probs
        .as_slice()
        .ok_or("pred_probs.npy is not in C order; save it with np.save from a C-ordered array")?;
    let labels: Vec<u32> = labels
        .iter()
        .map(|&label| u32::try_from(label).map_err(|_| format!("label {label} is not a u32")))
        .collect::<Result<_, _>>()?;
    let losses = losses.as_slice().ok_or("losses.npy is not contiguous")?;

    let mut timings = serde_json::Map::new();
    if "compute_confident_joint".contains(only) {
        let (seconds, joint) = timed(repeats, || {
            compute_confident_joint(probs, &labels, num_classes)
        });
        let joint = joint.map_err(|error| error.to_string())?;
        timings.insert("compute_confident_joint".into(), seconds.into());
        let calibrated: Array1<i64> = joint.calibrated.iter().map(|&c| c as i64).collect();
        let path = out.join("rust_confident_joint.npy");
        write_npy(
            &path,
            &calibrated
                .into_shape_with_order((num_classes, num_classes))
                .map_err(|e| e.to_string())?,
        )
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }

    for (name, filter) in [
        ("prune_by_noise_rate", Filter::PruneByNoiseRate),
        ("prune_by_class", Filter::PruneByClass),
        ("both", Filter::Both),
    ] {
        if !format!("find_label_issues/{name}").contains(only) {
            continue;
        }
        let options = LabelIssueOptions {
            filter,
            ..LabelIssueOptions::default()
        };
        let (seconds, ids) = timed(repeats, || {
            find_label_issues_ranked(
                probs,
                &labels,
                num_classes,
                &options,
                Ranking::SelfConfidence,
            )
        });
        let ids = ids.map_err(|error| error.to_string())?;
        timings.insert(format!("find_label_issues/{name}"), seconds.into());
        write_ids(&out.join(format!("rust_{name}.npy")), &ids)?;
    }

    if "top_k".contains(only) {
        let (seconds, top) = timed(repeats, || top_k(losses, k, Order::Largest));
        let top = top.map_err(|error| error.to_string())?;
        timings.insert(format!("top_k/{k}"), seconds.into());
        write_ids(&out.join("rust_top_k.npy"), &top.ids)?;
    }

    let report = serde_json::json!({
        "rayon_threads": rayon::current_num_threads(),
        "seconds": timings,
    });
    Ok(report.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: core_bench DATA_DIR OUT_DIR [REPEATS=3] [K=100] [ONLY]");
        return ExitCode::from(2);
    }
    let number = |index: usize, default: usize| -> Result<usize, String> {
        args.get(index).map_or(Ok(default), |value| {
            value
                .parse()
                .map_err(|_| format!("argument {index} '{value}' is not a positive integer"))
        })
    };
    let result = number(2, 3)
        .and_then(|repeats| Ok((repeats, number(3, 100)?)))
        .and_then(|(repeats, k)| {
            let only = args.get(4).map_or("", String::as_str);
            run(
                &PathBuf::from(&args[0]),
                &PathBuf::from(&args[1]),
                repeats,
                k,
                only,
            )
        });
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
