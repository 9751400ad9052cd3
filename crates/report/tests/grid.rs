//! Grid layout, rendering and PNG output through the public API.

use std::path::Path;

use image::Rgb;
use toploss_report::{
    Error, Tile, TileImage, grid_geometry, grid_layout, render_grid, write_grid_png,
};

/// Tile size for 28 x 28 images: width 8 + max(4 x 28, 136) + 8 = 152,
/// height 8 + 112 + 6 + 96 (caption) + 8 = 230.
const MNIST_TILE: (u32, u32) = (152, 230);
/// Height of the title line.
const TITLE_HEIGHT: u32 = 36;

fn gray_tile(id: u32, pixels: &[u8]) -> Tile<'_> {
    Tile {
        id,
        image: TileImage {
            pixels,
            channels: 1,
            height: 28,
            width: 28,
        },
        predicted: "Sneaker",
        actual: "Sandal",
        loss: 4.21,
        p_predicted: 0.98,
        p_actual: 0.01,
    }
}

/// Lists the names in `folder`, sorted.
fn folder_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("list the test folder")
        .map(|entry| {
            entry
                .expect("read an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn canvas_size_k_1_to_25() {
    let pixels = vec![128u8; 28 * 28];
    // (k, cols, rows) with cols = ceil(sqrt(k)) and rows = ceil(k / cols), worked by hand.
    let expected: [(usize, u32, u32); 25] = [
        (1, 1, 1),
        (2, 2, 1),
        (3, 2, 2),
        (4, 2, 2),
        (5, 3, 2),
        (6, 3, 2),
        (7, 3, 3),
        (8, 3, 3),
        (9, 3, 3),
        (10, 4, 3),
        (11, 4, 3),
        (12, 4, 3),
        (13, 4, 4),
        (14, 4, 4),
        (15, 4, 4),
        (16, 4, 4),
        (17, 5, 4),
        (18, 5, 4),
        (19, 5, 4),
        (20, 5, 4),
        (21, 5, 5),
        (22, 5, 5),
        (23, 5, 5),
        (24, 5, 5),
        (25, 5, 5),
    ];
    for (k, cols, rows) in expected {
        let tiles: Vec<Tile> = (0..k as u32).map(|id| gray_tile(id, &pixels)).collect();
        assert_eq!(
            grid_layout(k),
            (cols as usize, rows as usize),
            "layout, k = {k}"
        );

        // No empty row: the last row contains between 1 and cols tiles.
        let last_row = k as u32 - (rows - 1) * cols;
        assert!(
            (1..=cols).contains(&last_row),
            "k = {k}: last row has {last_row}"
        );

        let geometry = grid_geometry(&tiles, Some("title")).expect("valid tiles");
        assert_eq!(
            (geometry.cols, geometry.rows),
            (cols, rows),
            "geometry, k = {k}"
        );

        let canvas = render_grid(&tiles, Some("title")).expect("render");
        assert_eq!(canvas.width(), cols * MNIST_TILE.0, "width, k = {k}");
        assert_eq!(
            canvas.height(),
            TITLE_HEIGHT + rows * MNIST_TILE.1,
            "height, k = {k}"
        );

        let untitled = render_grid(&tiles, None).expect("render");
        assert_eq!(
            untitled.height(),
            rows * MNIST_TILE.1,
            "untitled height, k = {k}"
        );
    }
}

#[test]
fn grayscale_pixels_upscaled() {
    // Pixel (row, col) = (row * 28 + col) % 251, so neighbouring pixels differ.
    let pixels: Vec<u8> = (0..28 * 28).map(|i| (i % 251) as u8).collect();
    let tiles = [gray_tile(0, &pixels), gray_tile(1, &pixels)];
    let canvas = render_grid(&tiles, None).expect("render");

    // Tile 1 starts at x = 152. Its image starts at (152 + 8 + (136 - 112) / 2, 8) = (172, 8)
    // and each source pixel is a 4 x 4 block. Source (row 5, col 9) = 5 * 28 + 9 = 149 covers
    // x = 172 + 36 .. 172 + 40 and y = 8 + 20 .. 8 + 24.
    for (x, y) in [(208, 28), (211, 31)] {
        assert_eq!(canvas.get_pixel(x, y), &Rgb([149, 149, 149]), "({x}, {y})");
    }
    // The next block to the right is source (5, 10) = 150.
    assert_eq!(canvas.get_pixel(212, 28), &Rgb([150, 150, 150]));
    // Corner blocks: (0, 0) = 0 and (27, 27) = 783 % 251 = 30.
    assert_eq!(canvas.get_pixel(172, 8), &Rgb([0, 0, 0]));
    assert_eq!(canvas.get_pixel(172 + 111, 8 + 111), &Rgb([30, 30, 30]));
}

#[test]
fn rgb_pixels_channel_first() {
    // 32 x 32 RGB in C x H x W order: red plane = 200, green plane = x, blue plane = y.
    let (height, width) = (32usize, 32usize);
    let mut pixels = vec![200u8; height * width];
    pixels.extend((0..height * width).map(|i| (i % width) as u8));
    pixels.extend((0..height * width).map(|i| (i / width) as u8));
    let tile = Tile {
        id: 3,
        image: TileImage {
            pixels: &pixels,
            channels: 3,
            height,
            width,
        },
        predicted: "cat",
        actual: "cat",
        loss: 0.01,
        p_predicted: 0.99,
        p_actual: 0.99,
    };
    let canvas = render_grid(&[tile], None).expect("render");

    // scale = ceil(112 / 32) = 4, image 128 px wide in a 136 px content area:
    // origin (8 + (136 - 128) / 2, 8) = (12, 8). Source (row 7, col 30) covers
    // x = 12 + 120 .. 12 + 124, y = 8 + 28 .. 8 + 32.
    assert_eq!(canvas.get_pixel(12 + 121, 8 + 29), &Rgb([200, 30, 7]));
    assert_eq!(canvas.get_pixel(12, 8), &Rgb([200, 0, 0]));
}

#[test]
fn nan_and_inf_losses_render() {
    let pixels = vec![0u8; 28 * 28];
    let mut nan = gray_tile(1, &pixels);
    nan.loss = f32::NAN;
    nan.p_actual = f32::NAN;
    let mut inf = gray_tile(2, &pixels);
    inf.loss = f32::INFINITY;
    inf.p_actual = 0.0;
    let mut negative = gray_tile(3, &pixels);
    negative.loss = f32::NEG_INFINITY;

    let canvas = render_grid(&[nan, inf, negative], None).expect("render");
    // 3 tiles: 2 columns, 2 rows.
    assert_eq!(canvas.dimensions(), (2 * MNIST_TILE.0, 2 * MNIST_TILE.1));
}

#[test]
fn written_png_decodes() {
    let folder = tempfile::tempdir().expect("create a temp dir");
    let path = folder.path().join("top.png");
    let pixels = vec![255u8; 28 * 28];
    let tiles: Vec<Tile> = (0..5).map(|id| gray_tile(id, &pixels)).collect();

    write_grid_png(&tiles, Some("top 5 losses"), &path).expect("write");

    // 5 tiles: 3 columns, 2 rows, title on top.
    let decoded = image::open(&path).expect("decode the PNG");
    assert_eq!(decoded.width(), 3 * MNIST_TILE.0);
    assert_eq!(decoded.height(), TITLE_HEIGHT + 2 * MNIST_TILE.1);
    assert_eq!(folder_names(folder.path()), vec!["top.png".to_string()]);
}

#[test]
fn missing_folder_errors_with_path() {
    let folder = tempfile::tempdir().expect("create a temp dir");
    let path = folder.path().join("missing").join("top.png");
    let pixels = vec![0u8; 28 * 28];

    let error = write_grid_png(&[gray_tile(0, &pixels)], None, &path).expect_err("no folder");

    assert!(matches!(error, Error::Write { .. }), "{error}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert!(folder_names(folder.path()).is_empty());
}

#[test]
fn parent_is_file_errors() {
    // A file where the folder should be fails even for root, unlike a read-only folder.
    let folder = tempfile::tempdir().expect("create a temp dir");
    let blocker = folder.path().join("blocker");
    std::fs::write(&blocker, b"x").expect("create a file");
    let path = blocker.join("top.png");
    let pixels = vec![0u8; 28 * 28];

    let error = write_grid_png(&[gray_tile(0, &pixels)], None, &path).expect_err("not a folder");

    assert!(matches!(error, Error::Write { .. }), "{error}");
    assert_eq!(folder_names(folder.path()), vec!["blocker".to_string()]);
}

#[test]
fn folder_target_rejected_without_temp_file() {
    // The target is an existing folder, which a rename would replace, so nothing is written.
    let folder = tempfile::tempdir().expect("create a temp dir");
    let path = folder.path().join("top.png");
    std::fs::create_dir(&path).expect("create a folder named top.png");
    let pixels = vec![0u8; 28 * 28];

    let error =
        write_grid_png(&[gray_tile(0, &pixels)], None, &path).expect_err("target is a folder");

    assert!(matches!(error, Error::Write { .. }), "{error}");
    assert!(error.to_string().contains("top.png"), "{error}");
    assert_eq!(folder_names(folder.path()), vec!["top.png".to_string()]);
}

#[cfg(unix)]
#[test]
fn symlink_target_written_through() {
    let folder = tempfile::tempdir().expect("create a temp dir");
    let target = folder.path().join("real.png");
    std::fs::write(&target, "old").expect("write the old file");
    let link = folder.path().join("top.png");
    std::os::unix::fs::symlink(&target, &link).expect("create the link");
    let pixels = vec![0u8; 28 * 28];

    write_grid_png(&[gray_tile(0, &pixels)], None, &link).expect("write through the link");

    let link_type = std::fs::symlink_metadata(&link)
        .expect("stat the link")
        .file_type();
    assert!(link_type.is_symlink());
    assert!(
        image::open(&target).is_ok(),
        "the linked file is the new PNG"
    );
}

#[test]
fn empty_tiles_error() {
    let folder = tempfile::tempdir().expect("create a temp dir");
    let path = folder.path().join("top.png");
    let error = write_grid_png(&[], None, &path).expect_err("no tiles");
    assert!(matches!(error, Error::NoTiles));
    assert!(!path.exists());
}

#[test]
fn mismatched_length_names_id() {
    let pixels = vec![0u8; 3 * 28 * 28];
    let mut tile = gray_tile(4242, &pixels);
    tile.image.channels = 1; // 784 expected, 2352 given
    let error = render_grid(&[tile], None).expect_err("length mismatch");
    assert!(error.to_string().contains("tile id 4242"), "{error}");
    assert!(error.to_string().contains("2352"), "{error}");
}
