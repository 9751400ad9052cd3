//! Atomic PNG output: encode to a temporary file in the target folder, then rename it.

use std::io::{BufWriter, Write};
use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ImageEncoder, RgbImage};

use crate::Error;

/// Writes `image` as a PNG at `path`, replacing any existing file.
///
/// The PNG is encoded into a temporary file next to `path` and renamed over it, so a reader
/// never sees a half-written file. On any failure the temporary file is removed.
pub(crate) fn write_png_atomic(image: &RgbImage, path: &Path) -> Result<(), Error> {
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };

    // The temporary file must be in the same folder so that the rename stays on one file system.
    let target = toploss_data::run::replaced_file(path).map_err(write_error)?;
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".toploss-").suffix(".png.tmp");
    // tempfile creates files readable by the owner only; ask for the usual 0o666 minus umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(folder).map_err(write_error)?;

    // Encode and flush.
    {
        let mut writer = BufWriter::new(temp.as_file_mut());
        PngEncoder::new(&mut writer)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|source| match source {
                image::ImageError::IoError(io) => write_error(io),
                other => Error::Encode {
                    path: path.to_path_buf(),
                    source: other,
                },
            })?;
        writer.flush().map_err(write_error)?;
    }

    // Rename over the target. Dropping the returned error deletes the temporary file.
    temp.persist(&target)
        .map_err(|error| write_error(error.error))?;
    tracing::debug!(
        path = %path.display(),
        width = image.width(),
        height = image.height(),
        "wrote PNG"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_png_round_trips() {
        let folder = tempfile::tempdir().expect("create a temp dir for the test");
        let path = folder.path().join("tiny.png");
        let image = RgbImage::from_pixel(3, 2, image::Rgb([10, 20, 30]));

        write_png_atomic(&image, &path).expect("write into a fresh temp dir");

        let decoded = image::open(&path).expect("decode the PNG").to_rgb8();
        assert_eq!(decoded.dimensions(), (3, 2));
        assert_eq!(decoded.get_pixel(2, 1), &image::Rgb([10, 20, 30]));
        let names: Vec<_> = std::fs::read_dir(folder.path())
            .expect("list the temp dir")
            .map(|entry| entry.expect("read an entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("tiny.png")]);
    }

    #[cfg(unix)]
    #[test]
    fn written_png_has_default_mode() {
        use std::os::unix::fs::PermissionsExt;
        let folder = tempfile::tempdir().expect("create a temp dir for the test");
        let path = folder.path().join("perm.png");
        let reference = folder.path().join("reference");
        std::fs::File::create(&reference).expect("create a reference file");
        write_png_atomic(&RgbImage::new(1, 1), &path).expect("write into a fresh temp dir");

        // A plain tempfile is 0o600; the PNG should get the mode of any new file (0o666 minus
        // the umask), which the reference file shows.
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&reference));
    }
}
