//! Drawing a laid-out panel with plotters onto an RGB buffer, and PNG encoding.

use crate::colormap::viridis;
use crate::layout::{
    fit_title, PanelLayout, Rect, Style, LABEL_PAD, TICK_LEN, TICK_PAD, TITLE_PAD, X_LABEL_ANGLE,
};
use crate::text::{measure, HAlign, Label, VAlign};
use crate::HeatmapError;
use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// matplotlib's tick width (0.8 pt) rounds to one pixel at 100 dpi.
const TICK_WIDTH: i32 = 1;

pub(crate) fn draw_err<E: std::error::Error + Send + Sync>(
    e: DrawingAreaErrorKind<E>,
) -> HeatmapError {
    HeatmapError::Render(e.to_string())
}

/// Fills `r` (exclusive right/bottom edges; plotters' bitmap fill is exclusive too).
pub(crate) fn fill(area: &Area, r: Rect, color: RGBColor) -> Result<(), HeatmapError> {
    if r.x1 <= r.x0 || r.y1 <= r.y0 {
        return Ok(());
    }
    area.draw(&Rectangle::new(
        [(r.x0, r.y0), (r.x1, r.y1)],
        color.filled(),
    ))
    .map_err(draw_err)
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Data to draw in one panel.
pub(crate) struct Panel<'a> {
    pub matrix: &'a [Vec<f32>],
    pub labels: &'a [String],
    pub title: &'a str,
    /// Colour scale (already expanded if the data is constant).
    pub range: (f64, f64),
    pub style: &'a Style,
}

pub(crate) fn draw_panel(
    area: &Area,
    layout: &PanelLayout,
    panel: &Panel,
) -> Result<(), HeatmapError> {
    let (lo, hi) = panel.range;
    let scale = 1.0 / (hi - lo);
    let n = layout.n;
    let ax = layout.axes;

    // Cells: solid blocks without edges, as seaborn's pcolormesh. Filled per pixel
    // into one bitmap, so the cost follows the image size, not T^2 (512 tokens is
    // 262k cells, many narrower than a pixel, where the last cell covering a pixel wins).
    let (w, h) = (ax.width() as usize, ax.height() as usize);
    let mut col_of = vec![0usize; w];
    for j in 0..n {
        let (x0, x1) = (layout.col_edge(j) - ax.x0, layout.col_edge(j + 1) - ax.x0);
        col_of[x0 as usize..x1 as usize].fill(j);
    }
    let mut pixels = vec![0u8; w * h * 3];
    let mut colors = vec![[0u8; 3]; n];
    for (i, values) in panel.matrix.iter().enumerate() {
        let (y0, y1) = (layout.row_edge(i) - ax.y0, layout.row_edge(i + 1) - ax.y0);
        if y0 == y1 {
            continue;
        }
        for (c, &v) in colors.iter_mut().zip(values) {
            *c = viridis((f64::from(v) - lo) * scale);
        }
        let first = &mut pixels[y0 as usize * w * 3..(y0 as usize + 1) * w * 3];
        for (px, &j) in first.chunks_exact_mut(3).zip(&col_of) {
            px.copy_from_slice(&colors[j]);
        }
        // Every pixel row of a matrix row is the same.
        for y in y0 + 1..y1 {
            pixels.copy_within(
                y0 as usize * w * 3..(y0 as usize + 1) * w * 3,
                y as usize * w * 3,
            );
        }
    }
    let cells = BitMapElement::with_owned_buffer((ax.x0, ax.y0), (w as u32, h as u32), pixels)
        .ok_or_else(|| HeatmapError::Render("cell bitmap has the wrong size".into()))?;
    area.draw(&cells).map_err(draw_err)?;

    let black = RGBColor(0, 0, 0);
    let em = layout.tick_em;
    // x ticks: below the axes at column centres, labels rotated and right-aligned.
    for j in (0..n).step_by(layout.step_x) {
        let cx = (layout.col_edge(j) + layout.col_edge(j + 1)) as f32 / 2.0;
        let x = cx.floor() as i32;
        let tick = Rect {
            x0: x,
            y0: ax.y1,
            x1: x + TICK_WIDTH,
            y1: ax.y1 + TICK_LEN.round() as i32,
        };
        fill(area, tick, black)?;
        let at = (cx + 0.5, ax.y1 as f32 + TICK_LEN + TICK_PAD);
        let label =
            Label::new(&panel.labels[j], em, at, HAlign::Right, VAlign::Top).rotated(X_LABEL_ANGLE);
        area.draw(&label).map_err(draw_err)?;
    }
    // y ticks: left of the axes at row centres.
    for i in (0..n).step_by(layout.step_y) {
        let cy = (layout.row_edge(i) + layout.row_edge(i + 1)) as f32 / 2.0;
        let y = cy.floor() as i32;
        let tick = Rect {
            x0: ax.x0 - TICK_LEN.round() as i32,
            y0: y,
            x1: ax.x0,
            y1: y + TICK_WIDTH,
        };
        fill(area, tick, black)?;
        let at = (ax.x0 as f32 - TICK_LEN - TICK_PAD, cy + 0.5);
        let label = Label::new(&panel.labels[i], em, at, HAlign::Right, VAlign::Center);
        area.draw(&label).map_err(draw_err)?;
    }

    // Title centred over the axes (as matplotlib does), kept inside the panel.
    let reg = layout.region;
    let (title, title_em) = fit_title(
        panel.title,
        panel.style,
        reg.width() as f32 - 2.0 * panel.style.pad,
    );
    let half = measure(&title, title_em).0 / 2.0;
    let (lo_x, hi_x) = (reg.x0 as f32 + half + 2.0, reg.x1 as f32 - half - 2.0);
    let cx = ((ax.x0 + ax.x1) as f32 / 2.0).min(hi_x).max(lo_x);
    let at = (cx, ax.y0 as f32 - TITLE_PAD);
    let title = Label::new(&title, title_em, at, HAlign::Center, VAlign::Bottom);
    area.draw(&title).map_err(draw_err)?;

    if let Some(label_em) = panel.style.axis_label_em {
        let at = (
            (ax.x0 + ax.x1) as f32 / 2.0,
            layout.x_labels_bottom + LABEL_PAD,
        );
        area.draw(&Label::new(
            "Key Token",
            label_em,
            at,
            HAlign::Center,
            VAlign::Top,
        ))
        .map_err(draw_err)?;
        let at = (
            layout.y_labels_left - LABEL_PAD,
            (ax.y0 + ax.y1) as f32 / 2.0,
        );
        let label =
            Label::new("Query Token", label_em, at, HAlign::Right, VAlign::Center).rotated(90.0);
        area.draw(&label).map_err(draw_err)?;
    }

    if let (Some(cb), Some(em)) = (layout.colorbar, panel.style.colorbar_em) {
        draw_colorbar(area, cb, layout, (lo, hi), em)?;
    }
    Ok(())
}

/// Vertical colour bar, high values at the top, ticks and labels on its right.
fn draw_colorbar(
    area: &Area,
    cb: Rect,
    layout: &PanelLayout,
    (lo, hi): (f64, f64),
    em: f32,
) -> Result<(), HeatmapError> {
    let h = cb.height().max(1);
    for y in cb.y0..cb.y1 {
        // Pixel-row centres, top = hi.
        let t = 1.0 - (f64::from(y - cb.y0) + 0.5) / f64::from(h);
        fill(
            area,
            Rect {
                x0: cb.x0,
                y0: y,
                x1: cb.x1,
                y1: y + 1,
            },
            rgb(viridis(t)),
        )?;
    }
    let black = RGBColor(0, 0, 0);
    for (v, text) in &layout.colorbar_ticks {
        let t = (v - lo) / (hi - lo);
        let yf = cb.y1 as f64 - t * f64::from(h);
        let y = (yf.round() as i32).clamp(cb.y0, cb.y1 - 1);
        let tick = Rect {
            x0: cb.x1,
            y0: y,
            x1: cb.x1 + TICK_LEN.round() as i32,
            y1: y + TICK_WIDTH,
        };
        fill(area, tick, black)?;
        let at = (cb.x1 as f32 + TICK_LEN + TICK_PAD, y as f32 + 0.5);
        area.draw(&Label::new(text, em, at, HAlign::Left, VAlign::Center))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// Creates a white RGB canvas, lets `draw` fill it, and encodes it as PNG.
pub(crate) fn render_png(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area) -> Result<(), HeatmapError>,
) -> Result<Vec<u8>, HeatmapError> {
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(&area)?;
        area.present().map_err(draw_err)?;
    }
    encode_png(&buf, width, height)
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, HeatmapError> {
    let encode_err =
        |e: png::EncodingError| HeatmapError::Render(format!("PNG encoding failed: {e}"));
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Flat colour blocks compress well even with the fast setting, which keeps big grids quick.
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(encode_err)?;
    writer.write_image_data(rgb).map_err(encode_err)?;
    writer.finish().map_err(encode_err)?;
    Ok(out)
}
