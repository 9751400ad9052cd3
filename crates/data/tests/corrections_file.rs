//! Reading `corrections.csv` from disk and writing it back atomically.

use std::fs;
use std::path::Path;

use tempfile::TempDir;
use toploss_data::{Action, Correction, DatasetFormat, Error, read_corrections, write_corrections};

fn mnist_classes() -> Vec<String> {
    DatasetFormat::Mnist.fixed_classes().unwrap()
}

fn fashion_classes() -> Vec<String> {
    DatasetFormat::FashionMnist.fixed_classes().unwrap()
}

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/corrections.csv"
    ))
}

#[test]
fn read_fixture_file() {
    // Fashion-MNIST: "7" is index 7 (no class is named "7") and "Sneaker" is class 7.
    let corrections = read_corrections(fixture(), &fashion_classes(), 60_000).unwrap();
    assert_eq!(corrections.relabel, vec![(59915, 7), (3, 7)]);
    assert_eq!(corrections.discard, vec![7080]);
    assert_eq!(corrections.keep, vec![42]);
    assert_eq!(corrections.entries[0].note, "looks like a 7, not a 4");
}

#[test]
fn read_fixture_rejects_mnist_class_name() {
    // "Sneaker" is not an MNIST class; it is on line 5.
    let err = read_corrections(fixture(), &mnist_classes(), 60_000).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("corrections.csv, line 5: new_label \"Sneaker\""),
        "{message}"
    );
}

#[test]
fn read_fixture_small_split_rejects_id() {
    // With 10000 samples, id 59915 on line 2 is out of range.
    let err = read_corrections(fixture(), &fashion_classes(), 10_000).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CorrectionIdOutOfRange {
                line: 2,
                id: 59915,
                train_len: 10_000,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn read_missing_file_names_path() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("absent.csv");
    let err = read_corrections(&path, &mnist_classes(), 10).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err}");
    assert!(err.to_string().contains("absent.csv"), "{err}");
}

#[test]
fn write_then_read_round_trip() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("corrections.csv");
    let entries = vec![
        Correction {
            id: 12,
            action: Action::Relabel(9),
            note: "boot, \"clearly\"\nsecond line".to_string(),
            path: None,
        },
        Correction {
            id: 3,
            action: Action::Discard,
            note: String::new(),
            path: None,
        },
        Correction {
            id: 0,
            action: Action::Keep,
            note: "ok".to_string(),
            path: None,
        },
    ];
    write_corrections(&path, &entries, &fashion_classes()).unwrap();

    // Labels are written as class names.
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("id,action,new_label,note\n12,relabel,Ankle boot,"),
        "{text}"
    );

    let corrections = read_corrections(&path, &fashion_classes(), 100).unwrap();
    assert_eq!(corrections.entries, entries);
    assert_eq!(corrections.relabel, vec![(12, 9)]);

    // Only corrections.csv is left in the folder: the temporary file was renamed.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["corrections.csv"]);
}

#[test]
fn write_replaces_existing_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("corrections.csv");
    fs::write(&path, "old contents").unwrap();
    let entries = [Correction {
        id: 1,
        action: Action::Keep,
        note: String::new(),
        path: Some("cats/1.png".to_string()),
    }];
    write_corrections(&path, &entries, &mnist_classes()).unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "id,action,new_label,note,path\n1,keep,,,cats/1.png\n"
    );
}

#[test]
fn write_invalid_entry_keeps_old_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("corrections.csv");
    fs::write(&path, "old contents").unwrap();

    // Label 10 is past MNIST's classes 0..=9.
    let bad_label = [Correction {
        id: 1,
        action: Action::Relabel(10),
        note: String::new(),
        path: None,
    }];
    let err = write_corrections(&path, &bad_label, &mnist_classes()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidCorrection { id: 1, .. }),
        "{err}"
    );

    let keep = |id| Correction {
        id,
        action: Action::Keep,
        note: String::new(),
        path: None,
    };
    let err = write_corrections(&path, &[keep(4), keep(4)], &mnist_classes()).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");

    assert_eq!(fs::read_to_string(&path).unwrap(), "old contents");
}

#[test]
fn write_into_missing_folder_fails() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("no/such/folder/corrections.csv");
    let err = write_corrections(&path, &[], &mnist_classes()).unwrap_err();
    assert!(matches!(err, Error::Write { .. }), "{err}");
}
