//! Measuring and fitting single lines of text to a pixel width.

use ab_glyph::{FontRef, PxScale};
use imageproc::drawing::text_size;

/// Character appended to a shortened text.
const ELLIPSIS: char = '…';

/// Returns the width in pixels of `text` drawn at `size` px by `imageproc::drawing::draw_text_mut`.
pub(crate) fn text_width(font: &FontRef<'_>, size: f32, text: &str) -> u32 {
    text_size(PxScale::from(size), font, text).0
}

/// Fits `text` into `max_width` pixels.
///
/// Tries `size` first, then smaller sizes in 1 px steps down to `min_size`. If the text is
/// still too wide at `min_size`, characters are removed from its end and an ellipsis is
/// appended. Returns the size and the text to draw. The result is wider than `max_width`
/// only when even the ellipsis alone does not fit.
pub(crate) fn fit(
    font: &FontRef<'_>,
    size: f32,
    min_size: f32,
    text: &str,
    max_width: u32,
) -> (f32, String) {
    // Shrink first, because a smaller complete name reads better than a cut one.
    let mut current = size;
    while current >= min_size {
        if text_width(font, current, text) <= max_width {
            return (current, text.to_string());
        }
        current -= 1.0;
    }

    // Then drop characters from the end.
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate: String = chars.iter().chain(std::iter::once(&ELLIPSIS)).collect();
        if text_width(font, min_size, &candidate) <= max_width {
            return (min_size, candidate);
        }
    }
    (min_size, ELLIPSIS.to_string())
}

/// Fits `"{left}{separator}{right}"` into `max_width` pixels.
///
/// Like [`fit`], but when shrinking is not enough it shortens the longer of the two parts
/// first, so that both stay recognisable (for example "T-shirt/… / Ankle boot").
pub(crate) fn fit_pair(
    font: &FontRef<'_>,
    size: f32,
    min_size: f32,
    (left, separator, right): (&str, &str, &str),
    max_width: u32,
) -> (f32, String) {
    // Shrink first.
    let whole = format!("{left}{separator}{right}");
    let mut current = size;
    while current >= min_size {
        if text_width(font, current, &whole) <= max_width {
            return (current, whole);
        }
        current -= 1.0;
    }

    // Then shorten the longer part, one character at a time.
    let mut left_chars: Vec<char> = left.chars().collect();
    let mut right_chars: Vec<char> = right.chars().collect();
    let mut left_cut = false;
    let mut right_cut = false;
    loop {
        if left_chars.is_empty() && right_chars.is_empty() {
            let both = format!("{ELLIPSIS}{separator}{ELLIPSIS}");
            return (min_size, both);
        }
        if left_chars.len() >= right_chars.len() {
            left_chars.pop();
            left_cut = true;
        } else {
            right_chars.pop();
            right_cut = true;
        }
        let candidate = format!(
            "{}{separator}{}",
            shortened(&left_chars, left_cut),
            shortened(&right_chars, right_cut)
        );
        if text_width(font, min_size, &candidate) <= max_width {
            return (min_size, candidate);
        }
    }
}

/// Fits `text` into at most two lines of `max_width` pixels.
///
/// Tries one line at `size` down to `two_line_size + 1`, then breaks at spaces into two lines
/// at `two_line_size`, the second one cut with an ellipsis if needed. A first word too wide
/// for a line falls back to one line cut by [`fit`]. Returns the size and the lines.
pub(crate) fn fit_two_lines(
    font: &FontRef<'_>,
    size: f32,
    two_line_size: f32,
    text: &str,
    max_width: u32,
) -> (f32, Vec<String>) {
    // One line, shrinking down to just above the two-line size.
    let mut current = size;
    while current > two_line_size {
        if text_width(font, current, text) <= max_width {
            return (current, vec![text.to_string()]);
        }
        current -= 1.0;
    }

    // Two lines: as many words as fit on the first, the rest on the second.
    let words: Vec<&str> = text.split(' ').collect();
    let mut first_len = 0;
    while first_len < words.len()
        && text_width(font, two_line_size, &words[..=first_len].join(" ")) <= max_width
    {
        first_len += 1;
    }
    if first_len == 0 {
        let (size, line) = fit(font, two_line_size, two_line_size, text, max_width);
        return (size, vec![line]);
    }
    let first = words[..first_len].join(" ");
    if first_len == words.len() {
        return (two_line_size, vec![first]);
    }
    let rest = words[first_len..].join(" ");
    let (_, second) = fit(font, two_line_size, two_line_size, &rest, max_width);
    (two_line_size, vec![first, second])
}

/// Collects `chars` and appends an ellipsis when `cut` is set.
fn shortened(chars: &[char], cut: bool) -> String {
    let mut text: String = chars.iter().collect();
    if cut {
        text.push(ELLIPSIS);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::font;

    #[test]
    fn fit_keeps_short_text() {
        let font = font::load(font::REGULAR).expect("embedded font");
        let (size, text) = fit(&font, 12.0, 10.0, "loss", 200);
        assert_eq!(size, 12.0);
        assert_eq!(text, "loss");
    }

    #[test]
    fn fit_shrinks_before_cutting() {
        let font = font::load(font::REGULAR).expect("embedded font");
        let text = "Ankle boot";
        // A width between the 11 px and 12 px widths fits only after shrinking by 1 px.
        let at_11 = text_width(&font, 11.0, text);
        let at_12 = text_width(&font, 12.0, text);
        assert!(at_11 < at_12);
        let (size, fitted) = fit(&font, 12.0, 10.0, text, at_11);
        assert_eq!(size, 11.0);
        assert_eq!(fitted, text);
    }

    #[test]
    fn fit_ellipsizes_long_text() {
        let font = font::load(font::REGULAR).expect("embedded font");
        let (size, fitted) = fit(&font, 12.0, 10.0, "a very long class name indeed", 60);
        assert_eq!(size, 10.0);
        assert!(fitted.ends_with(ELLIPSIS), "{fitted}");
        assert!(text_width(&font, size, &fitted) <= 60);
    }

    #[test]
    fn fit_two_lines_wraps_at_space() {
        let font = font::load(font::REGULAR).expect("embedded font");
        let text = "top 1 loss · train · epoch 3/5";
        let (size, lines) = fit_two_lines(&font, 16.0, 12.0, text, 136);
        assert_eq!(size, 12.0);
        assert_eq!(lines.len(), 2, "{lines:?}");
        // Nothing is lost: the two lines joined by a space give the title back.
        assert_eq!(lines.join(" "), text);
        for line in &lines {
            assert!(text_width(&font, size, line) <= 136, "{line}");
        }
    }

    #[test]
    fn fit_two_lines_keeps_one_line() {
        let font = font::load(font::REGULAR).expect("embedded font");
        let (size, lines) = fit_two_lines(&font, 16.0, 12.0, "top 4 losses", 300);
        assert_eq!(size, 16.0);
        assert_eq!(lines, vec!["top 4 losses".to_string()]);
    }

    #[test]
    fn fit_pair_cuts_longer_part() {
        let font = font::load(font::REGULAR).expect("embedded font");
        let (size, fitted) = fit_pair(&font, 14.0, 11.0, ("T-shirt/top long", " / ", "Bag"), 90);
        assert_eq!(size, 11.0);
        assert!(fitted.ends_with(" / Bag"), "{fitted}");
        assert!(fitted.contains(ELLIPSIS), "{fitted}");
        assert!(text_width(&font, size, &fitted) <= 90);
    }
}
