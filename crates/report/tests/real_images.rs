//! Renders grids of real MNIST and Fashion-MNIST test images.
//!
//! Reads the gzipped IDX files from `$TOPLOSS_SHARED_DATA/{mnist,fashion-mnist}/`. Without
//! that variable the tests print a note and pass. When `TOPLOSS_SAMPLE_DIR` is set, the
//! grids and a curves plot are also written there for a person to look at.

use std::io::Read;
use std::path::{Path, PathBuf};

use toploss_report::{EpochPoint, Tile, TileImage, render_grid, write_curves_png, write_grid_png};

/// Fashion-MNIST class names in label order.
const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Returns the dataset folder, or `None` (with a note) when `TOPLOSS_SHARED_DATA` is unset.
fn data_folder(name: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os("TOPLOSS_SHARED_DATA") else {
        eprintln!("note: TOPLOSS_SHARED_DATA is unset, skipping the {name} grid test");
        return None;
    };
    Some(Path::new(&root).join(name))
}

/// Reads a gzipped IDX file and returns its body after the `header_len`-byte header.
fn read_idx_gz(path: &Path, header_len: usize) -> Vec<u8> {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("missing dataset file {}: {e}", path.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .unwrap_or_else(|e| panic!("failed to decompress {}: {e}", path.display()));
    bytes.split_off(header_len)
}

/// Builds 16 tiles from the first test images, with made-up predictions that cover a
/// misclassification, a correct one, NaN and inf losses and a tiny p(actual).
fn render_sample(folder: &Path, classes: &[&'static str; 10], title: &str, output: &str) {
    // IDX images: 16-byte header (magic, count, rows, cols); labels: 8-byte header.
    let images = read_idx_gz(&folder.join("t10k-images-idx3-ubyte.gz"), 16);
    let labels = read_idx_gz(&folder.join("t10k-labels-idx1-ubyte.gz"), 8);
    let side = 28;
    let k = 16;

    let tiles: Vec<Tile> = (0..k)
        .map(|i| {
            let actual = usize::from(labels[i]);
            // Every third tile is predicted correctly, the others as the previous class
            // (for Fashion-MNIST, 0 = "T-shirt/top" against 9 = "Ankle boot" is the widest pair)
            // or as class 0.
            let predicted = match i % 3 {
                0 => actual,
                1 => (actual + 9) % 10,
                _ => 0,
            };
            let loss = match i {
                0 => f32::NAN,
                1 => f32::INFINITY,
                _ => 6.0 - i as f32 * 0.3,
            };
            Tile {
                id: i as u32 * 613,
                image: TileImage {
                    pixels: &images[i * side * side..(i + 1) * side * side],
                    channels: 1,
                    height: side,
                    width: side,
                },
                predicted: classes[predicted],
                actual: classes[actual],
                loss,
                p_predicted: 0.99 - i as f32 * 0.03,
                p_actual: if i == 2 { 0.00032 } else { (-loss).exp() },
            }
        })
        .collect();

    // 16 tiles: 4 x 4 tiles of 152 x 230 px below a 36 px title.
    let canvas = render_grid(&tiles, Some(title)).expect("render the grid");
    assert_eq!(canvas.dimensions(), (4 * 152, 36 + 4 * 230));

    if let Some(out) = std::env::var_os("TOPLOSS_SAMPLE_DIR") {
        let path = Path::new(&out).join(output);
        write_grid_png(&tiles, Some(title), &path).expect("write the sample grid");
    }
}

#[test]
fn mnist_grid_renders() {
    let Some(folder) = data_folder("mnist") else {
        return;
    };
    render_sample(
        &folder,
        &DIGITS,
        "top 16 losses · train · epoch 3/5",
        "grid-sample.png",
    );
}

#[test]
fn fashion_grid_renders() {
    let Some(folder) = data_folder("fashion-mnist") else {
        return;
    };
    render_sample(
        &folder,
        &FASHION_CLASSES,
        "top 16 losses · fashion-mnist · train · epoch 5/5",
        "grid-sample-fashion.png",
    );
}

#[test]
fn sample_curves_written() {
    let Some(out) = std::env::var_os("TOPLOSS_SAMPLE_DIR") else {
        return;
    };
    // A plausible 8-epoch MNIST run.
    let train = [0.42, 0.14, 0.10, 0.08, 0.065, 0.055, 0.047, 0.041];
    let test = [0.16, 0.11, 0.085, 0.075, 0.07, 0.068, 0.069, 0.071];
    let accuracy = [0.952, 0.966, 0.974, 0.977, 0.979, 0.980, 0.9805, 0.9801];
    let points: Vec<EpochPoint> = (0..8)
        .map(|i| EpochPoint {
            epoch: i as u32 + 1,
            train_loss: train[i],
            test_loss: test[i],
            test_accuracy: accuracy[i],
        })
        .collect();
    let path = Path::new(&out).join("curves-sample.png");
    write_curves_png(&points, "base · mnist · shallow CNN", &path).expect("write the curves");
}
