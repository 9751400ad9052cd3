//! A plotters backend that draws text itself, with correct glyph placement.
//!
//! plotters 0.3.7 renders `ab_glyph` text by placing each glyph's bitmap at the pen position
//! without its left side bearing, so letters sit unevenly ("ep och"). [`TextBackend`] wraps
//! the bitmap backend, forwards all shapes to it, and lays out text the way
//! `imageproc::drawing::draw_text_mut` does for the grid: each glyph outlined at its pen
//! position, then drawn at its pixel bounds.

use ab_glyph::{Font, FontRef, OutlinedGlyph, ScaleFont, point};
use plotters::prelude::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle,
};

/// [`BitMapBackend`] with text drawn from the embedded fonts.
pub(crate) struct TextBackend<'a> {
    inner: BitMapBackend<'a>,
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

impl<'a> TextBackend<'a> {
    /// Wraps `inner`; text in bold style uses `bold`, any other style `regular`.
    pub(crate) fn new(
        inner: BitMapBackend<'a>,
        regular: FontRef<'static>,
        bold: FontRef<'static>,
    ) -> Self {
        Self {
            inner,
            regular,
            bold,
        }
    }

    fn font(&self, style: FontStyle) -> &FontRef<'static> {
        match style {
            FontStyle::Bold => &self.bold,
            _ => &self.regular,
        }
    }
}

/// One line of text laid out from x = 0 with the top of the line at y = 0.
struct Line {
    glyphs: Vec<OutlinedGlyph>,
    /// Sum of advances and kerning, in pixels.
    width: f32,
    /// Ascent minus descent, in pixels.
    height: f32,
}

/// Lays out `text` at `size` px on one line.
fn layout(font: &FontRef<'_>, size: f32, text: &str) -> Line {
    let scaled = font.as_scaled(size);
    let mut pen = 0.0;
    let mut previous = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(previous) = previous {
            pen += scaled.kern(previous, id);
        }
        let glyph = id.with_scale_and_position(size, point(pen, scaled.ascent()));
        // Spaces have no outline, only an advance.
        if let Some(outlined) = font.outline_glyph(glyph) {
            glyphs.push(outlined);
        }
        pen += scaled.h_advance(id);
        previous = Some(id);
    }
    Line {
        glyphs,
        width: pen,
        height: scaled.ascent() - scaled.descent(),
    }
}

type Result<T> =
    std::result::Result<T, DrawingErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

impl DrawingBackend for TextBackend<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<()> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<()> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<()> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<()> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<()> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<()> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<()> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> Result<()> {
        self.inner.fill_polygon(vertices, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Result<()> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32)> {
        let line = layout(self.font(style.style()), style.size() as f32, text);
        Ok((line.width.ceil() as u32, line.height.ceil() as u32))
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<()> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let line = layout(self.font(style.style()), style.size() as f32, text);

        // Offset of the line's top-left corner from the anchor, before rotation.
        let (width, height) = (line.width.ceil() as i32, line.height.ceil() as i32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();

        // Each covered pixel, blended by its coverage; the bitmap backend clips to the canvas.
        for glyph in &line.glyphs {
            let bounds = glyph.px_bounds();
            let mut result = Ok(());
            glyph.draw(|x, y, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let local_x = bounds.min.x as i32 + x as i32 + dx;
                let local_y = bounds.min.y as i32 + y as i32 + dy;
                let (x, y) = transform.transform(local_x, local_y);
                let pixel = BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                };
                result = self.inner.draw_pixel((pos.0 + x, pos.1 + y), pixel);
            });
            result?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::font;

    #[test]
    fn layout_width_matches_advances() {
        let font = font::load(font::REGULAR).expect("embedded font");
        let scaled = font.as_scaled(20.0);
        // "ii" has no kerning pair in DejaVu Sans, so its width is two advances of "i".
        let advance = scaled.h_advance(scaled.glyph_id('i'));
        let line = layout(&font, 20.0, "ii");
        assert!(
            (line.width - 2.0 * advance).abs() < 1e-3,
            "{} vs {}",
            line.width,
            advance
        );
        assert_eq!(line.glyphs.len(), 2);
    }

    #[test]
    fn glyph_keeps_left_bearing() {
        use plotters::style::{BLACK, Color, IntoFont, TextStyle};

        // "o" at x = 0: its left side bearing must stay blank, so the first inked column is
        // the glyph's px_bounds min x (at least 1 px at 40 px), not 0 as in plotters' renderer.
        crate::plot::register_embedded_font().expect("register fonts");
        let regular = font::load(font::REGULAR).expect("embedded font");
        let bold = font::load(font::BOLD).expect("embedded font");
        let expected = layout(&regular, 40.0, "o").glyphs[0].px_bounds().min.x as u32;
        assert!(expected >= 1, "left bearing {expected}");

        let (width, height) = (60u32, 60u32);
        let mut buffer = vec![255u8; (width * height * 3) as usize];
        {
            let inner = BitMapBackend::with_buffer(&mut buffer, (width, height));
            let mut backend = TextBackend::new(inner, regular, bold);
            let black = BLACK.to_rgba();
            let style = TextStyle::from(("sans-serif", 40).into_font()).color(&black);
            backend.draw_text("o", &style, (0, 0)).expect("draw");
            backend.present().expect("present");
        }
        let first_inked = (0..width)
            .find(|&x| (0..height).any(|y| buffer[((y * width + x) * 3) as usize] < 255))
            .expect("some ink");
        assert_eq!(first_inked, expected);
    }
}
