//! Text measured and rasterised straight from the embedded font with ab_glyph.
//!
//! plotters only rotates text by multiples of 90 degrees and its ab_glyph path
//! guesses the baseline, so labels are drawn here as a plotters element instead.

use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve, Point};
use ab_glyph_rasterizer::Rasterizer;
use plotters::element::{Drawable, PointCollection};
use plotters_backend::{BackendColor, BackendCoord, DrawingBackend, DrawingErrorKind};
use std::sync::LazyLock;

/// DejaVu Sans (the font matplotlib uses by default), shipped so no system font is needed.
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

static FONT: LazyLock<FontRef<'static>> = LazyLock::new(|| {
    // The bytes are a fixed asset checked by the tests, so failure is a build defect.
    FontRef::try_from_slice(FONT_BYTES).expect("embedded DejaVuSans.ttf is a valid font")
});

fn font() -> &'static FontRef<'static> {
    &FONT
}

/// Characters that render as nothing; DejaVu lacks them, so skip them rather than
/// draw a missing-glyph box (e.g. the variation selector in "❤️").
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{e0100}'..='\u{e01ef}')
}

/// One line of text laid out in font units (no shaping: tokens are short).
struct Line {
    glyphs: Vec<(GlyphId, f32)>,
    width: f32,
}

fn layout_line(text: &str) -> Line {
    let font = font();
    let mut glyphs = Vec::with_capacity(text.len());
    let mut pen = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    for c in text.chars().filter(|&c| !is_invisible(c)) {
        // Unknown characters map to glyph 0, the font's missing-glyph box.
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern_unscaled(p, id);
        }
        glyphs.push((id, pen));
        pen += font.h_advance_unscaled(id);
        prev = Some(id);
    }
    Line { glyphs, width: pen }
}

fn units_per_em() -> f32 {
    font().units_per_em().unwrap_or(2048.0)
}

/// Size of a line of text at `em` pixels per em: (advance width, ascent, descent), descent > 0.
pub(crate) fn measure(text: &str, em: f32) -> (f32, f32, f32) {
    let f = em / units_per_em();
    let font = font();
    (
        layout_line(text).width * f,
        font.ascent_unscaled() * f,
        -font.descent_unscaled() * f,
    )
}

/// Height of a text line (ascent + descent) at `em` pixels per em.
pub(crate) fn line_height(em: f32) -> f32 {
    let (_, a, d) = measure("", em);
    a + d
}

/// Axis-aligned extent (width, height) of a line's box rotated by `angle_deg`.
pub(crate) fn rotated_extent(text: &str, em: f32, angle_deg: f32) -> (f32, f32) {
    let (w, a, d) = measure(text, em);
    let (s, c) = angle_deg.to_radians().sin_cos();
    let h = a + d;
    (w * c.abs() + h * s.abs(), w * s.abs() + h * c.abs())
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum HAlign {
    Left,
    Center,
    Right,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum VAlign {
    Top,
    Center,
    Bottom,
}

/// A text line whose rotated bounding box is aligned to `at`, like matplotlib's
/// default rotation mode (e.g. x tick labels: rotated 45 degrees, top-right at the tick).
pub(crate) struct Label {
    text: String,
    em: f32,
    angle_deg: f32,
    at: (f32, f32),
    align: (HAlign, VAlign),
    origin: BackendCoord,
}

impl Label {
    pub(crate) fn new(text: &str, em: f32, at: (f32, f32), h: HAlign, v: VAlign) -> Self {
        Label {
            text: text.to_owned(),
            em,
            angle_deg: 0.0,
            at,
            align: (h, v),
            origin: (at.0 as i32, at.1 as i32),
        }
    }

    /// Counter-clockwise rotation in degrees, as in matplotlib.
    pub(crate) fn rotated(mut self, angle_deg: f32) -> Self {
        self.angle_deg = angle_deg;
        self
    }

    /// Rasterises the label; returns the top-left pixel and the coverage buffer.
    fn rasterize(&self) -> Option<((i32, i32), Rasterizer)> {
        let font = font();
        let line = layout_line(&self.text);
        if line.glyphs.is_empty() {
            return None;
        }
        let f = self.em / units_per_em();
        let ascent = font.ascent_unscaled() * f;
        let descent = -font.descent_unscaled() * f;
        let width = line.width * f;
        let (s, c) = self.angle_deg.to_radians().sin_cos();
        // Local frame: baseline origin at 0, y down. Screen y is down, so a
        // counter-clockwise turn maps (x, y) to (x*c + y*s, -x*s + y*c).
        let rot = |x: f32, y: f32| (x * c + y * s, -x * s + y * c);
        let corners = [
            (0.0, -ascent),
            (width, -ascent),
            (0.0, descent),
            (width, descent),
        ];
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (x, y) in corners {
            let (rx, ry) = rot(x, y);
            x0 = x0.min(rx);
            x1 = x1.max(rx);
            y0 = y0.min(ry);
            y1 = y1.max(ry);
        }
        let dx = match self.align.0 {
            HAlign::Left => self.at.0 - x0,
            HAlign::Center => self.at.0 - (x0 + x1) / 2.0,
            HAlign::Right => self.at.0 - x1,
        };
        let dy = match self.align.1 {
            VAlign::Top => self.at.1 - y0,
            VAlign::Center => self.at.1 - (y0 + y1) / 2.0,
            VAlign::Bottom => self.at.1 - y1,
        };
        // Some glyphs overhang their advance box, so leave a margin around it.
        let margin = (self.em * 0.5).ceil() + 1.0;
        let left = (x0 + dx - margin).floor();
        let top = (y0 + dy - margin).floor();
        let w = (x1 - x0 + 2.0 * margin).ceil() as usize + 1;
        let h = (y1 - y0 + 2.0 * margin).ceil() as usize + 1;
        let mut raster = Rasterizer::new(w, h);
        let to_px = |pen: f32, p: Point| {
            let (rx, ry) = rot((pen + p.x) * f, -p.y * f);
            ab_glyph::point(rx + dx - left, ry + dy - top)
        };
        for &(id, pen) in &line.glyphs {
            let Some(outline) = font.outline(id) else {
                continue;
            };
            for curve in &outline.curves {
                match *curve {
                    OutlineCurve::Line(a, b) => raster.draw_line(to_px(pen, a), to_px(pen, b)),
                    OutlineCurve::Quad(a, b, c) => {
                        raster.draw_quad(to_px(pen, a), to_px(pen, b), to_px(pen, c))
                    }
                    OutlineCurve::Cubic(a, b, c, d) => raster.draw_cubic(
                        to_px(pen, a),
                        to_px(pen, b),
                        to_px(pen, c),
                        to_px(pen, d),
                    ),
                }
            }
        }
        Some(((left as i32, top as i32), raster))
    }
}

impl<'a> PointCollection<'a, BackendCoord> for &'a Label {
    type Point = &'a BackendCoord;
    type IntoIter = std::iter::Once<&'a BackendCoord>;

    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.origin)
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Label {
    // Drawn on the root area only, so the label's own pixel position is used as is.
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        _pos: I,
        backend: &mut DB,
        _parent_dim: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some(((left, top), raster)) = self.rasterize() else {
            return Ok(());
        };
        let mut result = Ok(());
        raster.for_each_pixel_2d(|x, y, alpha| {
            if alpha > 1.0 / 255.0 && result.is_ok() {
                let color = BackendColor {
                    alpha: f64::from(alpha.min(1.0)),
                    rgb: (0, 0, 0),
                };
                result = backend.draw_pixel((left + x as i32, top + y as i32), color);
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_parses_and_measures() {
        let (w, a, d) = measure("Key Token", 13.9);
        assert!(w > 50.0 && w < 90.0, "width {w}");
        assert!(a > 10.0 && d > 2.0);
    }

    #[test]
    fn missing_glyphs_do_not_panic() {
        for t in ["你好", "🙂", "❤️", "␣x", "\u{0}", "a\u{200d}b", ""] {
            let label = Label::new(t, 12.0, (50.0, 50.0), HAlign::Left, VAlign::Top).rotated(45.0);
            let _ = label.rasterize();
            let _ = measure(t, 12.0);
        }
    }
}
