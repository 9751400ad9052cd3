//! Fonts embedded in the binary, so that rendering needs no system font.
//!
//! Both files are DejaVu Sans 2.37 from Debian's `fonts-dejavu-core` package, under the
//! Bitstream Vera licence (see `assets/README.md`).

use ab_glyph::FontRef;

use crate::Error;

/// File name and bytes of DejaVu Sans (regular).
pub(crate) const REGULAR: (&str, &[u8]) =
    ("DejaVuSans.ttf", include_bytes!("../assets/DejaVuSans.ttf"));

/// File name and bytes of DejaVu Sans Bold.
pub(crate) const BOLD: (&str, &[u8]) = (
    "DejaVuSans-Bold.ttf",
    include_bytes!("../assets/DejaVuSans-Bold.ttf"),
);

/// Parses one of the embedded fonts.
pub(crate) fn load(
    (name, bytes): (&'static str, &'static [u8]),
) -> Result<FontRef<'static>, Error> {
    FontRef::try_from_slice(bytes).map_err(|_| Error::Font { name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_fonts_parse() {
        assert!(load(REGULAR).is_ok());
        assert!(load(BOLD).is_ok());
    }
}
