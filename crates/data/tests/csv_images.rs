//! `csv:` on small files written by the tests: headers, label columns, shapes, malformed
//! rows and the generated stratified split.

use std::fs;
use std::path::Path;

use toploss_data::{
    Dataset, DatasetFormat, DatasetOptions, DatasetSpec, Error, ImageShapeOption, LabelColumn, load,
};

fn load_with(path: &Path, options: DatasetOptions) -> Result<Dataset, Error> {
    load(&DatasetSpec::new(DatasetFormat::Csv, path).with_options(options))
}

/// Writes `train.csv` and `test.csv` into a new temp dir.
fn two_files(train: &str, test: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("train.csv"), train).unwrap();
    fs::write(dir.path().join("test.csv"), test).unwrap();
    dir
}

#[test]
fn csv_folder_with_header() {
    // 2x2 images; labels 1, 0, 10 sort numerically to classes "0", "1", "10".
    let dir = two_files(
        "label,p0,p1,p2,p3\n1,0,1,2,3\n0,4,5,6,7\n10,255,254,253,252\n",
        "label,p0,p1,p2,p3\n10,9,9,9,9\n",
    );
    let data = load_with(dir.path(), DatasetOptions::default()).unwrap();
    assert_eq!(data.classes, ["0", "1", "10"]);
    assert_eq!(data.train.labels, [1, 0, 2]);
    assert_eq!(data.test.labels, [2]);
    assert_eq!(data.train.shape.height, 2);
    assert_eq!(data.train.shape.channels, 1);
    assert_eq!(data.train.image(2), &[255, 254, 253, 252]);
    assert_eq!(data.generated_split, None);
}

#[test]
fn csv_without_header() {
    let dir = two_files("3,1,2,3,4\n5,5,6,7,8\n", "5,0,0,0,0\n");
    let data = load_with(dir.path(), DatasetOptions::default()).unwrap();
    assert_eq!(data.classes, ["3", "5"]);
    assert_eq!(data.train.len(), 2);
    assert_eq!(data.train.image(0), &[1, 2, 3, 4]);
}

#[test]
fn csv_string_labels_without_header() {
    // One non-number per row (the label) does not make the first row a header.
    let dir = two_files("dog,1,2,3,4\ncat,5,6,7,8\n", "cat,0,0,0,0\n");
    let data = load_with(dir.path(), DatasetOptions::default()).unwrap();
    assert_eq!(data.classes, ["cat", "dog"]);
    assert_eq!(data.train.labels, [1, 0]);
}

#[test]
fn csv_label_column_elsewhere() {
    // The label is the last column, named "y".
    let train = "a,b,c,d,y\n1,2,3,4,7\n5,6,7,8,8\n";
    let test = "a,b,c,d,y\n5,0,0,1,8\n";
    let dir = two_files(train, test);
    let options = DatasetOptions {
        label_column: Some(LabelColumn::Name("y".into())),
        ..DatasetOptions::default()
    };
    let data = load_with(dir.path(), options).unwrap();
    assert_eq!(data.classes, ["7", "8"]);
    assert_eq!(data.train.image(1), &[5, 6, 7, 8]);
    assert_eq!(data.test.image(0), &[5, 0, 0, 1]);

    // The same by index, 4.
    let options = DatasetOptions {
        label_column: Some(LabelColumn::Index(4)),
        ..DatasetOptions::default()
    };
    assert_eq!(load_with(dir.path(), options).unwrap().train.labels, [0, 1]);

    // Without the option and without a "label" header, the first column is the label: the
    // classes are the values of column a, and the pixels are b, c, d, y.
    let data = load_with(dir.path(), DatasetOptions::default()).unwrap();
    assert_eq!(data.classes, ["1", "5"]);
    assert_eq!(data.train.image(0), &[2, 3, 4, 7]);
}

#[test]
fn csv_unknown_label_column_lists_header() {
    let dir = two_files("a,b\n1,2\n", "a,b\n1,2\n");
    let options = DatasetOptions {
        label_column: Some(LabelColumn::Name("label".into())),
        ..DatasetOptions::default()
    };
    let message = load_with(dir.path(), options).unwrap_err().to_string();
    assert!(message.contains("--label-column \"label\""), "{message}");
    assert!(message.contains("\"a\", \"b\""), "{message}");
}

#[test]
fn csv_explicit_image_shape() {
    // 6 pixels: not a square, so the shape must be given; 3x1x2 = 3 planes of 1x2.
    let dir = two_files("0,1,2,3,4,5,6\n1,0,0,0,0,0,0\n", "1,1,1,1,1,1,1\n");
    let err = load_with(dir.path(), DatasetOptions::default()).unwrap_err();
    assert!(err.to_string().contains("pass --image-shape"), "{err}");

    let options = DatasetOptions {
        image_shape: Some("3x1x2".parse::<ImageShapeOption>().unwrap()),
        ..DatasetOptions::default()
    };
    let data = load_with(dir.path(), options).unwrap();
    assert_eq!(data.train.shape.channels, 3);
    assert_eq!(data.train.shape.height, 1);
    assert_eq!(data.train.shape.width, 2);
    assert_eq!(data.train.image(0), &[1, 2, 3, 4, 5, 6]);

    // A shape whose pixel count is not the column count: 2x2 = 4 != 6.
    let options = DatasetOptions {
        image_shape: Some("2x2".parse::<ImageShapeOption>().unwrap()),
        ..DatasetOptions::default()
    };
    let message = load_with(dir.path(), options).unwrap_err().to_string();
    assert!(message.contains("6 pixel columns"), "{message}");
}

/// Loads a two-file folder whose train.csv is `train` and returns the error message.
fn train_error(train: &str) -> String {
    let dir = two_files(train, "0,0,0,0,0\n");
    load_with(dir.path(), DatasetOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn csv_wrong_column_count_names_line() {
    let message = train_error("label,a,b,c,d\n0,1,2,3,4\n0,1,2,3\n");
    assert!(message.contains("train.csv, line 3"), "{message}");
    assert!(message.contains("found 4 columns, expected 5"), "{message}");
}

#[test]
fn csv_non_number_names_line() {
    let message = train_error("0,1,2,3,4\n0,1,x,3,4\n");
    assert!(message.contains("train.csv, line 2"), "{message}");
    assert!(message.contains("column 2"), "{message}");
    assert!(message.contains("\"x\" is not a whole number"), "{message}");
}

#[test]
fn csv_value_256_names_line() {
    let message = train_error("label,a,b,c,d\n0,1,2,3,4\n0,1,2,3,4\n0,256,2,3,4\n");
    assert!(message.contains("train.csv, line 4"), "{message}");
    assert!(message.contains("column 1 (a)"), "{message}");
    assert!(message.contains("256 is outside 0..=255"), "{message}");
}

#[test]
fn csv_test_only_label_names_line() {
    let dir = two_files("0,1,2,3,4\n1,1,2,3,4\n", "1,0,0,0,0\n7,0,0,0,0\n");
    let message = load_with(dir.path(), DatasetOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("test.csv, line 2"), "{message}");
    assert!(message.contains("label \"7\" is not one of"), "{message}");
}

#[test]
fn csv_classes_file_names_and_indices() {
    let dir = two_files("0,1,2,3,4\nboot,1,2,3,4\n", "1,0,0,0,0\n");
    let classes = dir.path().join("classes.txt");
    fs::write(&classes, "shirt\nboot\n").unwrap();
    let options = DatasetOptions {
        classes_file: Some(classes.clone()),
        ..DatasetOptions::default()
    };
    // "0" is index 0 (shirt), "boot" is a name (1), "1" is index 1.
    let data = load_with(dir.path(), options.clone()).unwrap();
    assert_eq!(data.classes, ["shirt", "boot"]);
    assert_eq!(data.train.labels, [0, 1]);
    assert_eq!(data.test.labels, [1]);

    // A label that is neither a name nor an index below 2.
    fs::write(dir.path().join("test.csv"), "1,0,0,0,0\n2,0,0,0,0\n").unwrap();
    let message = load_with(dir.path(), options).unwrap_err().to_string();
    assert!(message.contains("test.csv, line 2"), "{message}");
    assert!(message.contains("label \"2\""), "{message}");
    assert!(message.contains("classes.txt"), "{message}");
}

/// A single file of 100 rows of 2x2 pixels: class c (0..4) has 10 * (c + 1) rows, and row
/// r's pixels are r % 256 so that rows can be distinguished.
fn single_file(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("label,a,b,c,d\n");
    let mut row = 0;
    for class in 0..4 {
        for _ in 0..10 * (class + 1) {
            text.push_str(&format!("{class},{row},{row},{row},{row}\n"));
            row += 1;
        }
    }
    let path = dir.join("all.csv");
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn csv_single_file_stratified_split() {
    let dir = tempfile::tempdir().unwrap();
    let path = single_file(dir.path());
    let options = DatasetOptions {
        test_fraction: Some(0.25),
        split_seed: 3,
        ..DatasetOptions::default()
    };
    let data = load_with(&path, options.clone()).unwrap();

    // Class sizes 10, 20, 30, 40: round(0.25 * n) = 3 (2.5 rounds away from 0), 5, 8 (7.5),
    // 10, so 26 test rows; round(0.25 * 100) = 25 is within one per class.
    let test_counts: Vec<usize> = (0..4)
        .map(|class| data.test.labels.iter().filter(|&&l| l == class).count())
        .collect();
    assert_eq!(test_counts, [3, 5, 8, 10]);
    assert_eq!(data.train.len() + data.test.len(), 100);
    for class in 0..4 {
        assert!(
            data.train.labels.contains(&class),
            "class {class} not in train"
        );
        assert!(
            data.test.labels.contains(&class),
            "class {class} not in test"
        );
    }
    let split = data.generated_split.unwrap();
    assert_eq!(split.test_fraction, 0.25);
    assert_eq!(split.seed, 3);

    // Ids follow file order: the first pixel (the row number) increases within each split.
    let rows = |split: &toploss_data::Split| -> Vec<u8> {
        (0..split.len()).map(|id| split.image(id)[0]).collect()
    };
    assert!(rows(&data.train).windows(2).all(|w| w[0] < w[1]));
    assert!(rows(&data.test).windows(2).all(|w| w[0] < w[1]));

    // The same seed gives the same split and fingerprint; another seed another split.
    let again = load_with(&path, options.clone()).unwrap();
    assert_eq!(rows(&again.test), rows(&data.test));
    assert_eq!(again.fingerprint, data.fingerprint);
    let other = load_with(
        &path,
        DatasetOptions {
            split_seed: 4,
            ..options
        },
    )
    .unwrap();
    assert_ne!(rows(&other.test), rows(&data.test));
    assert_ne!(other.fingerprint, data.fingerprint);
}

#[test]
fn csv_default_test_fraction_is_one_fifth() {
    let dir = tempfile::tempdir().unwrap();
    let path = single_file(dir.path());
    let data = load_with(&path, DatasetOptions::default()).unwrap();
    // round(0.2 * n) for n = 10, 20, 30, 40: 2 + 4 + 6 + 8 = 20.
    assert_eq!(data.test.len(), 20);
    assert_eq!(data.generated_split.unwrap().test_fraction, 0.2);
}

#[test]
fn csv_missing_test_file_named() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("train.csv"), "0,1\n").unwrap();
    let message = load_with(dir.path(), DatasetOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("test.csv"), "{message}");
}

#[test]
fn csv_inferred_from_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = single_file(dir.path());
    let spec: DatasetSpec = path.to_str().unwrap().parse().unwrap();
    assert_eq!(spec.format, DatasetFormat::Csv);
}
