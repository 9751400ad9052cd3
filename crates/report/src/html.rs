//! The self-contained HTML report: one page whose data, images, styles and script are all
//! inline, so it opens offline and can be mailed as a single file.
//!
//! The caller gathers the numbers as JSON; this module packs the sample images into PNG
//! sprite sheets, embeds both into the page template and writes the file atomically.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use image::ExtendedColorType;
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use crate::Error;
use crate::grid::TileImage;

/// The page: styles and script, with the two markers below replaced by the title and data.
const TEMPLATE: &str = include_str!("../assets/report.html");
/// Replaced by the HTML-escaped title.
const TITLE_MARKER: &str = "{{TITLE}}";
/// Replaced by the report's JSON.
const DATA_MARKER: &str = "{{DATA}}";

/// Images per sprite sheet: 32 x 32 tiles, so that a sheet of 32 x 32-pixel images is
/// 1,024 pixels wide, far below every browser's image size limit.
pub const SPRITE_COLUMNS: usize = 32;
/// Rows of tiles per sprite sheet.
pub const SPRITE_ROWS: usize = 32;

/// Sample images packed into PNG sheets, addressed by the image's index in the list given to
/// [`sprite_sheets`]: sheet `i / (columns * rows)`, then row-major within the sheet.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sprites {
    /// Width of one image in pixels.
    pub width: usize,
    /// Height of one image in pixels.
    pub height: usize,
    /// Tiles per sheet row.
    pub columns: usize,
    /// Tile rows per sheet.
    pub rows: usize,
    /// Each sheet as a `data:image/png;base64,...` URI.
    pub sheets: Vec<String>,
}

/// Packs `images`, which must all have the size of the first, into PNG sprite sheets.
///
/// Grayscale images give 8-bit grayscale sheets and RGB images 8-bit RGB sheets; a mix of the
/// two is drawn in RGB. An empty list gives no sheet.
pub fn sprite_sheets(images: &[TileImage<'_>]) -> Result<Sprites, Error> {
    let (width, height) = images
        .first()
        .map_or((0, 0), |image| (image.width, image.height));
    if let Some((index, image)) = images
        .iter()
        .enumerate()
        .find(|(_, image)| image.width != width || image.height != height)
    {
        return Err(Error::SpriteSize {
            index,
            width: image.width,
            height: image.height,
            first_width: width,
            first_height: height,
        });
    }
    let rgb = images.iter().any(|image| image.channels != 1);
    let channels = if rgb { 3 } else { 1 };
    let per_sheet = SPRITE_COLUMNS * SPRITE_ROWS;
    let mut sheets = Vec::with_capacity(images.len().div_ceil(per_sheet));
    for chunk in images.chunks(per_sheet) {
        let rows = chunk.len().div_ceil(SPRITE_COLUMNS);
        let columns = if rows == 1 {
            chunk.len()
        } else {
            SPRITE_COLUMNS
        };
        let sheet_width = columns * width;
        let sheet_height = rows * height;
        let mut pixels = vec![0u8; sheet_width * sheet_height * channels];
        for (slot, image) in chunk.iter().enumerate() {
            let x0 = (slot % SPRITE_COLUMNS) * width;
            let y0 = (slot / SPRITE_COLUMNS) * height;
            let plane = width * height;
            for y in 0..height {
                for x in 0..width {
                    let out = ((y0 + y) * sheet_width + x0 + x) * channels;
                    for c in 0..channels {
                        // A grayscale image in an RGB sheet repeats its one channel.
                        let source = if image.channels == 1 { 0 } else { c };
                        pixels[out + c] = image.pixels[source * plane + y * width + x];
                    }
                }
            }
        }
        let mut png = Vec::new();
        PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
            .write_image(
                &pixels,
                sheet_width as u32,
                sheet_height as u32,
                if rgb {
                    ExtendedColorType::Rgb8
                } else {
                    ExtendedColorType::L8
                },
            )
            .map_err(|source| Error::Sprite { source })?;
        sheets.push(format!("data:image/png;base64,{}", BASE64.encode(&png)));
    }
    Ok(Sprites {
        width,
        height,
        columns: SPRITE_COLUMNS,
        rows: SPRITE_ROWS,
        sheets,
    })
}

/// Escapes `text` for an HTML text node or a quoted attribute.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Makes JSON safe inside `<script type="application/json">`: every `<` becomes `\u003c`, so
/// no string in the data can close the element or open a comment.
fn escape_script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// Returns the report page with `title` and `data` (JSON text) filled in.
pub fn render_report_html(title: &str, data: &str) -> String {
    // Split at the data marker first, so that a title containing a marker stays text.
    let title = escape_html(title);
    let (head, tail) = TEMPLATE.split_once(DATA_MARKER).unwrap_or((TEMPLATE, ""));
    let mut page = head.replace(TITLE_MARKER, &title);
    page.push_str(&escape_script_json(data));
    page.push_str(&tail.replace(TITLE_MARKER, &title));
    page
}

/// Writes the report page to `path` atomically, replacing any existing file.
pub fn write_report_html(title: &str, data: &str, path: &Path) -> Result<(), Error> {
    let page = render_report_html(title, data);
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = toploss_data::run::replaced_file(path).map_err(write_error)?;
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".toploss-").suffix(".html.tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(folder).map_err(write_error)?;
    temp.write_all(page.as_bytes()).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(&target)
        .map_err(|error| write_error(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_sheet(uri: &str) -> image::DynamicImage {
        let encoded = uri
            .strip_prefix("data:image/png;base64,")
            .expect("a PNG data URI");
        let bytes = BASE64.decode(encoded).expect("valid base64");
        image::load_from_memory(&bytes).expect("a valid PNG")
    }

    #[test]
    fn sprites_place_each_image_row_major() {
        // 33 images of 2x3 pixels, image i filled with the value i: one full row of 32 and
        // one image on the second row, so the sheet is 32*3 = 96 wide and 2*2 = 4 high.
        let images: Vec<Vec<u8>> = (0..33u8).map(|i| vec![i; 6]).collect();
        let tiles: Vec<TileImage<'_>> = images
            .iter()
            .map(|pixels| TileImage {
                pixels,
                channels: 1,
                height: 2,
                width: 3,
            })
            .collect();
        let sprites = sprite_sheets(&tiles).unwrap();
        assert_eq!(sprites.sheets.len(), 1);
        let sheet = decode_sheet(&sprites.sheets[0]).to_luma8();
        assert_eq!(sheet.dimensions(), (96, 4));
        // Image 5 starts at x = 5*3 = 15, y = 0; image 32 at x = 0, y = 2.
        assert_eq!(sheet.get_pixel(15, 0).0, [5]);
        assert_eq!(sheet.get_pixel(17, 1).0, [5]);
        assert_eq!(sheet.get_pixel(0, 2).0, [32]);
        // The rest of the second row is empty (black).
        assert_eq!(sheet.get_pixel(3, 2).0, [0]);
    }

    #[test]
    fn sprites_split_into_sheets_and_keep_colour() {
        // 1,025 RGB images of 1x1: a full 32x32 sheet, then one with a single image.
        // Channel-first pixels: red 10, green 20, blue 30.
        let pixels = [10u8, 20, 30];
        let tiles = vec![
            TileImage {
                pixels: &pixels,
                channels: 3,
                height: 1,
                width: 1,
            };
            1025
        ];
        let sprites = sprite_sheets(&tiles).unwrap();
        assert_eq!(sprites.sheets.len(), 2);
        let first = decode_sheet(&sprites.sheets[0]).to_rgb8();
        assert_eq!(first.dimensions(), (32, 32));
        assert_eq!(first.get_pixel(31, 31).0, [10, 20, 30]);
        let second = decode_sheet(&sprites.sheets[1]).to_rgb8();
        assert_eq!(second.dimensions(), (1, 1));
    }

    #[test]
    fn sprites_refuse_mixed_sizes() {
        let small = [0u8; 4];
        let large = [0u8; 9];
        let tiles = [
            TileImage {
                pixels: &small,
                channels: 1,
                height: 2,
                width: 2,
            },
            TileImage {
                pixels: &large,
                channels: 1,
                height: 3,
                width: 3,
            },
        ];
        let error = sprite_sheets(&tiles).unwrap_err().to_string();
        assert!(error.contains("sprite image 1 is 3x3"), "{error}");
    }

    #[test]
    fn data_cannot_close_the_script_element() {
        let page = render_report_html("a <b> & \"c\" {{DATA}}", r#"{"name":"</script><script>x"}"#);
        // The title is in <title> and <h1>, and its marker text stays text.
        assert_eq!(
            page.matches("a &lt;b&gt; &amp; &quot;c&quot; {{DATA}}")
                .count(),
            2
        );
        assert!(page.contains(r#"{"name":"\u003c/script>\u003cscript>x"}"#));
        // The template's own closing tag is the only one after the data.
        let data_at = page.find("\\u003c/script>").unwrap();
        assert_eq!(page[data_at..].matches("</script>").count(), 2);
    }
}
