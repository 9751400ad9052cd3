//! Curves PNG output through the public API.

use toploss_report::{CURVES_HEIGHT, CURVES_WIDTH, EpochPoint, Error, write_curves_png};

#[test]
fn curves_png_decodes_at_stated_size() {
    let folder = tempfile::tempdir().expect("create a temp dir");
    let path = folder.path().join("curves.png");
    let points: Vec<EpochPoint> = (1..=5)
        .map(|epoch| EpochPoint {
            epoch,
            train_loss: 0.6 / f64::from(epoch),
            test_loss: 0.5 / f64::from(epoch) + 0.05,
            test_accuracy: 0.9 + 0.01 * f64::from(epoch),
        })
        .collect();

    write_curves_png(&points, "base · mnist", &path).expect("write");

    let decoded = image::open(&path).expect("decode the PNG");
    assert_eq!(
        (decoded.width(), decoded.height()),
        (CURVES_WIDTH, CURVES_HEIGHT)
    );
    assert_eq!((CURVES_WIDTH, CURVES_HEIGHT), (1200, 450));
}

#[test]
fn curves_empty_input_errors() {
    let folder = tempfile::tempdir().expect("create a temp dir");
    let path = folder.path().join("curves.png");
    let error = write_curves_png(&[], "empty", &path).expect_err("no points");
    assert!(matches!(error, Error::NoEpochs));
    assert!(!path.exists());
}

#[test]
fn curves_missing_folder_errors() {
    let folder = tempfile::tempdir().expect("create a temp dir");
    let path = folder.path().join("missing").join("curves.png");
    let points = [EpochPoint {
        epoch: 1,
        train_loss: 0.3,
        test_loss: 0.2,
        test_accuracy: 0.95,
    }];
    let error = write_curves_png(&points, "one", &path).expect_err("no folder");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}
