//! `folder:` on trees of PNG and JPEG files written by the tests: real Fashion-MNIST test
//! images with non-ASCII class names, RGB and resized files mixed in and one corrupt file,
//! plus small synthetic trees for the split-folder rules.

mod common;

use std::fs;
use std::path::Path;

use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage, RgbaImage};
use toploss_data::{Dataset, DatasetFormat, DatasetOptions, DatasetSpec, Error, idx, load};

/// Fashion-MNIST classes as folder names: "/" cannot be in a name, and Bag and Ankle boot get
/// non-ASCII names.
const FOLDERS: [&str; 10] = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Täsche",
    "靴",
];

/// Images written per class.
const PER_CLASS: usize = 8;

fn load_with(path: &Path, options: DatasetOptions) -> Result<Dataset, Error> {
    load(&DatasetSpec::new(DatasetFormat::Folder, path).with_options(options))
}

/// Writes the first 8 test images of each Fashion-MNIST class as `CLASS/NNN.png`. In class
/// Coat (4), images 0 and 1 are saved as RGB (gray copied to R, G and B); in class Dress (3),
/// images 0 and 1 are upscaled to 32x32; `Sandal/zz-corrupt.png` is a PNG signature followed
/// by junk. Returns the original 28x28 pixels of `Trouser/000.png`.
fn write_fashion_tree(root: &Path, shared: &Path) -> Vec<u8> {
    let images = idx::read_images(&shared.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = idx::read_labels(&shared.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let size = images.height * images.width;
    let mut written = [0usize; 10];
    let mut trouser = Vec::new();
    for (id, &label) in labels.iter().enumerate() {
        let class = label as usize;
        let n = written[class];
        if n == PER_CLASS {
            continue;
        }
        written[class] += 1;
        let pixels = images.pixels[id * size..(id + 1) * size].to_vec();
        let dir = root.join(FOLDERS[class]);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{n:03}.png"));
        let gray = GrayImage::from_raw(28, 28, pixels.clone()).unwrap();
        if class == 1 && n == 0 {
            trouser = pixels;
        }
        if class == 4 && n < 2 {
            let rgb = RgbImage::from_fn(28, 28, |x, y| {
                let v = gray.get_pixel(x, y).0[0];
                Rgb([v, v, v])
            });
            rgb.save(&path).unwrap();
        } else if class == 3 && n < 2 {
            image::imageops::resize(&gray, 32, 32, image::imageops::FilterType::Nearest)
                .save(&path)
                .unwrap();
        } else {
            gray.save(&path).unwrap();
        }
    }
    fs::write(
        root.join("Sandal").join("zz-corrupt.png"),
        b"\x89PNG\r\n\x1a\nthis is not a PNG chunk",
    )
    .unwrap();
    trouser
}

fn all_paths(data: &Dataset) -> Vec<String> {
    let mut paths = data.train.paths.clone().unwrap();
    paths.extend(data.test.paths.clone().unwrap());
    paths
}

#[test]
fn folder_fashion_tree_end_to_end() {
    let Some(shared) = common::shared_data("fashion-mnist") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trouser = write_fashion_tree(dir.path(), &shared);

    // Without --skip-unreadable the corrupt file stops loading, named.
    let message = load_with(dir.path(), DatasetOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("zz-corrupt.png"), "{message}");
    assert!(message.contains("--skip-unreadable"), "{message}");

    // With it: 10 classes x 8 images load, the corrupt one is listed.
    let options = DatasetOptions {
        skip_unreadable: true,
        ..DatasetOptions::default()
    };
    let data = load_with(dir.path(), options.clone()).unwrap();
    let mut sorted_folders = FOLDERS.map(String::from).to_vec();
    sorted_folders.sort();
    assert_eq!(data.classes, sorted_folders);
    assert_eq!(data.classes[8], "Täsche");
    assert_eq!(data.classes[9], "靴");
    assert_eq!(data.train.len() + data.test.len(), 10 * PER_CLASS);
    assert_eq!(data.report.skipped.len(), 1);
    assert_eq!(data.report.skipped[0].path, "Sandal/zz-corrupt.png");

    // The RGB files make the default 3 channels, so the 78 grayscale files are expanded
    // (80 readable minus the 2 RGB ones); two of them are also resized to the common 28x28.
    assert_eq!(data.train.shape.channels, 3);
    assert_eq!((data.train.shape.height, data.train.shape.width), (28, 28));
    assert_eq!(data.test.shape, data.train.shape);
    assert_eq!(data.report.converted.len(), 10 * PER_CLASS - 2);
    let resized = data
        .report
        .converted
        .iter()
        .find(|file| file.path == "Dress/000.png")
        .unwrap();
    assert!(
        resized
            .changes
            .contains(&"resized from 32x32 to 28x28 (HxW)".to_string()),
        "{resized:?}"
    );

    // Ids follow sorted relative paths within each split, and labels follow the folder.
    for split in [&data.train, &data.test] {
        let paths = split.paths.as_ref().unwrap();
        assert!(paths.windows(2).all(|w| w[0] < w[1]), "{paths:?}");
        for (id, path) in paths.iter().enumerate() {
            let folder = path.split('/').next().unwrap();
            assert_eq!(data.classes[split.labels[id] as usize], folder, "{path}");
        }
    }
    // Stratified: round(0.2 * 8) = round(1.6) = 2 test images per class, the corrupt file
    // not counted.
    for class in 0..10u32 {
        let test_count = data.test.labels.iter().filter(|&&l| l == class).count();
        assert_eq!(test_count, 2, "class {}", data.classes[class as usize]);
    }
    assert_eq!(
        all_paths(&data).len(),
        10 * PER_CLASS,
        "every readable file has a path"
    );

    // Grayscale with --channels 1: an unconverted file keeps its exact pixels.
    let gray_options = DatasetOptions {
        channels: Some(1),
        ..options
    };
    let gray = load_with(dir.path(), gray_options).unwrap();
    assert_eq!(gray.train.shape.channels, 1);
    let (split, id) = [&gray.train, &gray.test]
        .into_iter()
        .find_map(|split| {
            let id = split
                .paths
                .as_ref()?
                .iter()
                .position(|p| p == "Trouser/000.png")?;
            Some((split, id))
        })
        .unwrap();
    assert_eq!(split.image(id), trouser.as_slice());
    // Only the RGB (2) and resized (2) files are converted now.
    assert_eq!(gray.report.converted.len(), 4);
    assert_ne!(gray.fingerprint, data.fingerprint);
}

/// Writes a 4x4 grayscale PNG filled with `value`.
fn gray_png(path: &Path, value: u8) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_pixel(4, 4, Luma([value]))
        .save(path)
        .unwrap();
}

#[test]
fn folder_split_folders_keep_split() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    gray_png(&root.join("train/b/2.png"), 20);
    gray_png(&root.join("train/b/1.png"), 10);
    gray_png(&root.join("train/a/x/deep.png"), 30);
    gray_png(&root.join("test/a/t.png"), 40);
    // A JPEG among the PNGs; a text file is ignored.
    fs::create_dir_all(root.join("test/b")).unwrap();
    GrayImage::from_pixel(4, 4, Luma([50]))
        .save_with_format(root.join("test/b/j.JPG"), ImageFormat::Jpeg)
        .unwrap();
    fs::write(root.join("train/a/notes.txt"), "ignored").unwrap();

    let data = load_with(root, DatasetOptions::default()).unwrap();
    assert_eq!(data.classes, ["a", "b"]);
    assert_eq!(
        data.train.paths.as_deref().unwrap(),
        ["train/a/x/deep.png", "train/b/1.png", "train/b/2.png"]
    );
    assert_eq!(data.train.labels, [0, 1, 1]);
    assert_eq!(data.train.image(1), &[10; 16]);
    assert_eq!(
        data.test.paths.as_deref().unwrap(),
        ["test/a/t.png", "test/b/j.JPG"]
    );
    assert_eq!(data.generated_split, None);
    assert!(data.report.is_empty(), "{:?}", data.report);
    // JPEG is lossy, but a flat gray block stays within a step or two of 50.
    assert!(data.test.image(1).iter().all(|&v| v.abs_diff(50) <= 2));
}

#[test]
fn folder_class_only_in_test_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    gray_png(&root.join("train/a/1.png"), 1);
    gray_png(&root.join("test/a/1.png"), 1);
    gray_png(&root.join("test/zebra/1.png"), 1);
    let message = load_with(root, DatasetOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("class \"zebra\" is in test/ but not in train/"),
        "{message}"
    );
}

#[test]
fn folder_train_without_test_rejected() {
    let dir = tempfile::tempdir().unwrap();
    gray_png(&dir.path().join("train/a/1.png"), 1);
    let message = load_with(dir.path(), DatasetOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("found train/ but no test/"), "{message}");
}

#[test]
fn folder_image_size_and_rgba() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for n in 0..3 {
        gray_png(&root.join(format!("a/{n}.png")), 100);
    }
    fs::create_dir_all(root.join("b")).unwrap();
    for n in 0..3 {
        RgbaImage::from_pixel(4, 4, image::Rgba([255, 0, 0, 128]))
            .save(root.join(format!("b/{n}.png")))
            .unwrap();
    }

    let options = DatasetOptions {
        image_size: Some("2x3".parse().unwrap()),
        ..DatasetOptions::default()
    };
    let data = load_with(root, options).unwrap();

    // RGBA makes 3 channels; every file is resized from 4x4 to 2x3.
    assert_eq!(data.train.shape.channels, 3);
    assert_eq!((data.train.shape.height, data.train.shape.width), (2, 3));
    assert_eq!(data.report.converted.len(), 6);
    let rgba = data
        .report
        .converted
        .iter()
        .find(|file| file.path == "b/0.png")
        .unwrap();
    assert_eq!(
        rgba.changes,
        ["alpha dropped", "resized from 4x4 to 2x3 (HxW)"]
    );

    // round(0.2 * 3) = round(0.6) = 1 test image per class.
    assert_eq!(data.test.len(), 2);
    // A red image (alpha dropped): planes R = 255, G = 0, B = 0, each 2 x 3.
    let id = data
        .train
        .paths
        .as_ref()
        .unwrap()
        .iter()
        .position(|p| p.starts_with("b/"))
        .unwrap();
    assert_eq!(
        data.train.image(id),
        &[
            255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
}

#[test]
fn folder_bad_channels_rejected() {
    let dir = tempfile::tempdir().unwrap();
    gray_png(&dir.path().join("a/1.png"), 1);
    let options = DatasetOptions {
        channels: Some(2),
        ..DatasetOptions::default()
    };
    let message = load_with(dir.path(), options).unwrap_err().to_string();
    assert!(message.contains("invalid --channels \"2\""), "{message}");
}
