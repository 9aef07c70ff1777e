//! Line charts of a measure per lens row, one line per lens, in panels side
//! by side: the tuned-lens paper's picture of how well each lens reads
//! each layer. Drawn with the same text, ticks and PNG encoding as the
//! heatmaps.

use plotters::prelude::*;

use crate::layout::{Rect, PT, TICK_LEN, TICK_PAD, TITLE_PAD, X_LABEL_ANGLE};
use crate::render::{draw_err, fill, render_png, Area};
use crate::text::{measure, HAlign, Label, VAlign};
use crate::HeatmapError;

/// Size of one panel of [`render_curves`].
pub const CURVE_PANEL_SIZE: (u32, u32) = (600, 440);
/// Panels per row of [`render_curves`].
pub const CURVE_COLUMNS: usize = 2;
/// Most points a line may have (rows of a lens: layers + 2).
pub const MAX_POINTS: usize = 1024;

/// matplotlib's first colours (tab:blue, tab:orange, ...), one per line.
const LINE_COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];
const GRID_GREY: RGBColor = RGBColor(225, 225, 225);
const BLACK: RGBColor = RGBColor(0, 0, 0);

/// One line: a value per x position.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
}

/// One panel: a measure, its lines, and whether its y axis is logarithmic
/// (values ≤ 0 are then left out of the line).
#[derive(Clone, Debug)]
pub struct CurvePanel<'a> {
    pub title: &'a str,
    pub series: Vec<Series<'a>>,
    pub log_y: bool,
}

/// A PNG of `panels` (two per row) sharing the x positions `x_labels`.
/// Every series has one finite value per x label.
pub fn render_curves(
    title: &str,
    x_labels: &[String],
    panels: &[CurvePanel],
) -> Result<Vec<u8>, HeatmapError> {
    if panels.is_empty() {
        return Err(HeatmapError::NoPanels);
    }
    if x_labels.is_empty() || x_labels.len() > MAX_POINTS {
        return Err(HeatmapError::Curve(format!(
            "{} x positions: a chart takes 1 to {MAX_POINTS}",
            x_labels.len()
        )));
    }
    for p in panels {
        if p.series.is_empty() || p.series.len() > LINE_COLORS.len() {
            return Err(HeatmapError::Curve(format!(
                "{}: {} lines (a panel draws 1 to {})",
                p.title,
                p.series.len(),
                LINE_COLORS.len()
            )));
        }
        for s in &p.series {
            if s.values.len() != x_labels.len() {
                return Err(HeatmapError::Curve(format!(
                    "{} / {}: {} values for {} x positions",
                    p.title,
                    s.name,
                    s.values.len(),
                    x_labels.len()
                )));
            }
            if let Some((i, v)) = s.values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(HeatmapError::Curve(format!(
                    "{} / {}: value {i} is {v}: all values must be finite",
                    p.title, s.name
                )));
            }
        }
    }
    let (pw, ph) = CURVE_PANEL_SIZE;
    let rows = panels.len().div_ceil(CURVE_COLUMNS);
    let cols = panels.len().min(CURVE_COLUMNS);
    let title_h = (30.0 * PT) as u32;
    let (w, h) = (pw * cols as u32, title_h + ph * rows as u32);
    render_png(w, h, |area| {
        let em = 14.0 * PT;
        area.draw(&Label::new(
            title,
            em,
            (w as f32 / 2.0, title_h as f32 / 2.0),
            HAlign::Center,
            VAlign::Center,
        ))
        .map_err(draw_err)?;
        for (k, panel) in panels.iter().enumerate() {
            let (r, c) = (k / CURVE_COLUMNS, k % CURVE_COLUMNS);
            let region = Rect {
                x0: (c as u32 * pw) as i32,
                y0: (title_h + r as u32 * ph) as i32,
                x1: ((c as u32 + 1) * pw) as i32,
                y1: (title_h + (r as u32 + 1) * ph) as i32,
            };
            draw_curve_panel(area, region, x_labels, panel)?;
        }
        Ok(())
    })
}

/// A y axis: the data range mapped to pixels, linear or log10.
struct YAxis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl YAxis {
    fn fit(panel: &CurvePanel) -> Self {
        let values = panel.series.iter().flat_map(|s| s.values.iter().copied());
        if panel.log_y {
            let pos: Vec<f64> = values.filter(|v| *v > 0.0).collect();
            let lo = pos.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = pos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() {
                // Whole decades, at least one.
                let (a, b) = (lo.log10().floor(), hi.log10().ceil());
                return YAxis {
                    lo: a,
                    hi: if b > a { b } else { a + 1.0 },
                    log: true,
                };
            }
        }
        let all: Vec<f64> = panel
            .series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let step = nice_step((hi - lo) / 5.0);
        YAxis {
            lo: (lo / step).floor() * step,
            hi: (hi / step).ceil() * step,
            log: false,
        }
    }

    /// Where a value sits, 0 at the bottom and 1 at the top (`None`: not drawable).
    fn frac(&self, v: f64) -> Option<f64> {
        let v = if self.log {
            if v <= 0.0 {
                return None;
            }
            v.log10()
        } else {
            v
        };
        Some((v - self.lo) / (self.hi - self.lo))
    }

    fn ticks(&self) -> Vec<(f64, String)> {
        if self.log {
            let (a, b) = (self.lo as i32, self.hi as i32);
            let every = ((b - a) as usize).div_ceil(6).max(1);
            return (a..=b)
                .step_by(every)
                .map(|e| (10f64.powi(e), format_decade(e)))
                .collect();
        }
        let step = nice_step((self.hi - self.lo) / 5.0);
        let decimals = (-step.log10().floor()).max(0.0) as usize;
        let n = ((self.hi - self.lo) / step).round() as i64;
        (0..=n)
            .map(|i| {
                let v = self.lo + i as f64 * step;
                (v, format!("{v:.decimals$}"))
            })
            .collect()
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

fn format_decade(e: i32) -> String {
    match e {
        -2..=3 => {
            let v = 10f64.powi(e);
            if e < 0 {
                format!("{v:.*}", (-e) as usize)
            } else {
                format!("{v:.0}")
            }
        }
        _ => format!("1e{e}"),
    }
}

/// Text sizes and spacing of a panel, in pixels.
const TICK_EM: f32 = 9.0 * PT;
const TITLE_EM: f32 = 11.0 * PT;
const LEGEND_EM: f32 = 9.0 * PT;
/// The legend's one line, between the title and the axes.
const LEGEND_H: f32 = LEGEND_EM * 1.6;
/// Blank border inside each panel's region.
const PANEL_PAD: f32 = 10.0 * PT;
/// Lines and their dots; the legend draws its samples the same way.
const LINE_WIDTH: u32 = 2;
const DOT_RADIUS: i32 = 3;

/// One panel in `region`. Later steps paint over earlier ones (lines over the
/// grid, dots over lines), so the order of the steps is part of the picture.
fn draw_curve_panel(
    area: &Area,
    region: Rect,
    x_labels: &[String],
    panel: &CurvePanel,
) -> Result<(), HeatmapError> {
    let y = YAxis::fit(panel);
    let ticks = y.ticks();
    let axes = axes_rect(region, x_labels, &ticks, panel.title)?;
    let plot = Plot {
        axes,
        points: x_labels.len(),
        y,
    };
    draw_y_grid_and_ticks(area, &plot, &ticks)?;
    draw_x_ticks(area, &plot, x_labels)?;
    draw_frame(area, axes)?;
    for (series, color) in panel.series.iter().zip(LINE_COLORS) {
        draw_series(area, &plot, series, color)?;
    }
    draw_title(area, axes, panel.title, plot.y.log)?;
    draw_legend(area, axes, &panel.series)
}

/// The axes inside `region`, leaving room for what is drawn around them: tick
/// labels left and below, title and legend above.
fn axes_rect(
    region: Rect,
    x_labels: &[String],
    ticks: &[(f64, String)],
    title: &str,
) -> Result<Rect, HeatmapError> {
    let y_label_w = ticks
        .iter()
        .map(|(_, t)| measure(t, TICK_EM).0)
        .fold(0.0f32, f32::max);
    // The x margin inside the axes absorbs part of the first label's overhang.
    let left = (y_label_w + TICK_LEN + TICK_PAD)
        .max(first_x_label_hang(&x_labels[0]) - 0.03 * CURVE_PANEL_SIZE.0 as f32);
    let axes = Rect {
        x0: region.x0 + (PANEL_PAD + left).ceil() as i32,
        y0: region.y0 + (PANEL_PAD + TITLE_EM * 1.4 + TITLE_PAD + LEGEND_H).ceil() as i32,
        x1: region.x1 - PANEL_PAD.ceil() as i32,
        y1: region.y1 - (PANEL_PAD + x_labels_height(x_labels) + TICK_LEN + TICK_PAD).ceil() as i32,
    };
    if axes.width() < 20 || axes.height() < 20 {
        return Err(HeatmapError::Render(format!(
            "{title}: the labels leave no room for the chart"
        )));
    }
    Ok(axes)
}

/// Rotated x labels hang below the axes by their rotated height.
fn x_labels_height(x_labels: &[String]) -> f32 {
    let (s, c) = X_LABEL_ANGLE.to_radians().sin_cos();
    x_labels
        .iter()
        .map(|t| {
            let (w, a, d) = measure(t, TICK_EM);
            w * s + (a + d) * c
        })
        .fold(0.0f32, f32::max)
}

/// The first x label hangs left of its tick by its rotated width.
fn first_x_label_hang(label: &str) -> f32 {
    let (s, c) = X_LABEL_ANGLE.to_radians().sin_cos();
    let (w, a, d) = measure(label, TICK_EM);
    w * c + (a + d) * s * 0.5
}

/// A panel's axes and how data positions map to their pixels.
struct Plot {
    axes: Rect,
    /// How many x positions the axes spread over.
    points: usize,
    y: YAxis,
}

impl Plot {
    /// Pixel column of x position `i`. A margin keeps the end dots off the frame.
    fn x_px(&self, i: usize) -> i32 {
        let (axes, n) = (self.axes, self.points);
        if n == 1 {
            return (axes.x0 + axes.x1) / 2;
        }
        let margin = 0.03 * f64::from(axes.width());
        let span = f64::from(axes.width()) - 2.0 * margin;
        (f64::from(axes.x0) + margin + span * i as f64 / (n - 1) as f64).round() as i32
    }

    /// Pixel row of a y axis fraction (0 at the bottom, 1 at the top).
    fn y_px(&self, f: f64) -> i32 {
        (f64::from(self.axes.y1) - f * f64::from(self.axes.height())).round() as i32
    }
}

/// Horizontal grid lines, each with its y tick and label.
fn draw_y_grid_and_ticks(
    area: &Area,
    plot: &Plot,
    ticks: &[(f64, String)],
) -> Result<(), HeatmapError> {
    let axes = plot.axes;
    for (v, text) in ticks {
        let Some(f) = plot.y.frac(*v) else { continue };
        let yy = plot.y_px(f);
        fill(
            area,
            Rect {
                x0: axes.x0,
                y0: yy,
                x1: axes.x1,
                y1: yy + 1,
            },
            GRID_GREY,
        )?;
        fill(
            area,
            Rect {
                x0: axes.x0 - TICK_LEN.round() as i32,
                y0: yy,
                x1: axes.x0,
                y1: yy + 1,
            },
            BLACK,
        )?;
        let at = (axes.x0 as f32 - TICK_LEN - TICK_PAD, yy as f32 + 0.5);
        area.draw(&Label::new(
            text,
            TICK_EM,
            at,
            HAlign::Right,
            VAlign::Center,
        ))
        .map_err(draw_err)?;
    }
    Ok(())
}

/// x ticks: every label while they fit, else every k-th, so labels never overlap.
fn draw_x_ticks(area: &Area, plot: &Plot, x_labels: &[String]) -> Result<(), HeatmapError> {
    let axes = plot.axes;
    let n = x_labels.len();
    let room = (axes.width() as f32 / n as f32).max(1.0);
    let step = ((TICK_EM * 1.3) / room).ceil().max(1.0) as usize;
    for i in (0..n).step_by(step) {
        let x = plot.x_px(i);
        fill(
            area,
            Rect {
                x0: x,
                y0: axes.y1,
                x1: x + 1,
                y1: axes.y1 + TICK_LEN.round() as i32,
            },
            BLACK,
        )?;
        let at = (x as f32 + 0.5, axes.y1 as f32 + TICK_LEN + TICK_PAD);
        let label = Label::new(&x_labels[i], TICK_EM, at, HAlign::Right, VAlign::Top)
            .rotated(X_LABEL_ANGLE);
        area.draw(&label).map_err(draw_err)?;
    }
    Ok(())
}

/// The left and bottom edges of the axes, meeting at the corner.
fn draw_frame(area: &Area, axes: Rect) -> Result<(), HeatmapError> {
    for r in [
        Rect {
            x0: axes.x0,
            y0: axes.y0,
            x1: axes.x0 + 1,
            y1: axes.y1 + 1,
        },
        Rect {
            x0: axes.x0,
            y0: axes.y1,
            x1: axes.x1 + 1,
            y1: axes.y1 + 1,
        },
    ] {
        fill(area, r, BLACK)?;
    }
    Ok(())
}

/// One series: a line with a dot at each row.
fn draw_series(
    area: &Area,
    plot: &Plot,
    series: &Series,
    color: RGBColor,
) -> Result<(), HeatmapError> {
    for run in visible_runs(plot, series.values) {
        area.draw(&PathElement::new(
            run.clone(),
            color.stroke_width(LINE_WIDTH),
        ))
        .map_err(draw_err)?;
        for p in run {
            area.draw(&Circle::new(p, DOT_RADIUS, color.filled()))
                .map_err(draw_err)?;
        }
    }
    Ok(())
}

/// The pixels of `values` in unbroken runs: a log axis cannot show a value
/// ≤ 0, and joining its neighbours across it would draw data that is not there.
fn visible_runs(plot: &Plot, values: &[f64]) -> Vec<Vec<(i32, i32)>> {
    let mut run: Vec<(i32, i32)> = Vec::new();
    let mut runs = Vec::new();
    for (i, &v) in values.iter().enumerate() {
        match plot.y.frac(v) {
            Some(f) => run.push((plot.x_px(i), plot.y_px(f))),
            None => runs.push(std::mem::take(&mut run)),
        }
    }
    runs.push(run);
    runs.retain(|r| !r.is_empty());
    runs
}

/// The panel's title above the legend, naming the scale when it is logarithmic.
fn draw_title(area: &Area, axes: Rect, title: &str, log: bool) -> Result<(), HeatmapError> {
    let title = if log {
        format!("{title} (log scale)")
    } else {
        title.to_string()
    };
    let at = (
        (axes.x0 + axes.x1) as f32 / 2.0,
        axes.y0 as f32 - TITLE_PAD - LEGEND_H,
    );
    area.draw(&Label::new(
        &title,
        TITLE_EM,
        at,
        HAlign::Center,
        VAlign::Bottom,
    ))
    .map_err(draw_err)
}

/// Legend in one line, centred between the title and the axes, so it hides no data.
fn draw_legend(area: &Area, axes: Rect, series: &[Series]) -> Result<(), HeatmapError> {
    let widths: Vec<f32> = series.iter().map(|s| legend_entry_width(s.name)).collect();
    let total: f32 = widths.iter().sum();
    let mut x = ((axes.x0 + axes.x1) as f32 - total) / 2.0;
    let mid = (axes.y0 as f32 - LEGEND_H / 2.0 - 2.0).round() as i32;
    for ((s, w), color) in series.iter().zip(&widths).zip(LINE_COLORS) {
        draw_legend_entry(area, (x.round() as i32, mid), s.name, color)?;
        x += w;
    }
    Ok(())
}

/// An entry's sample and name (see [`draw_legend_entry`]) and the gap to the next.
fn legend_entry_width(name: &str) -> f32 {
    30.0 + measure(name, LEGEND_EM).0 + 16.0
}

/// A 24 px sample of the line with its dot, then the name 30 px from `x0`.
fn draw_legend_entry(
    area: &Area,
    (x0, mid): (i32, i32),
    name: &str,
    color: RGBColor,
) -> Result<(), HeatmapError> {
    area.draw(&PathElement::new(
        vec![(x0, mid), (x0 + 24, mid)],
        color.stroke_width(LINE_WIDTH),
    ))
    .map_err(draw_err)?;
    area.draw(&Circle::new((x0 + 12, mid), DOT_RADIUS, color.filled()))
        .map_err(draw_err)?;
    let at = ((x0 + 30) as f32, mid as f32 + 0.5);
    area.draw(&Label::new(
        name,
        LEGEND_EM,
        at,
        HAlign::Left,
        VAlign::Center,
    ))
    .map_err(draw_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<String> {
        std::iter::once("Embeddings".to_string())
            .chain((0..n - 2).map(|i| format!("Layer {i}")))
            .chain(std::iter::once("Final Output".to_string()))
            .collect()
    }

    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut dec = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut buf = vec![0; dec.output_buffer_size().unwrap()];
        let info = dec.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn count(rgb: &[u8], c: RGBColor) -> usize {
        rgb.chunks_exact(3)
            .filter(|p| p[0] == c.0 && p[1] == c.1 && p[2] == c.2)
            .count()
    }

    #[test]
    fn both_lenses_are_drawn_in_their_colours() {
        let x = labels(32);
        let logit: Vec<f64> = (0..32).map(|i| 8.0 * (1.0 - i as f64 / 31.0)).collect();
        let tuned: Vec<f64> = logit.iter().map(|v| v / 10.0).collect();
        let panels = [
            CurvePanel {
                title: "KL to the final output (nats)",
                series: vec![
                    Series {
                        name: "logit lens",
                        values: &logit,
                    },
                    Series {
                        name: "tuned lens",
                        values: &tuned,
                    },
                ],
                log_y: true,
            },
            CurvePanel {
                title: "Entropy (nats)",
                series: vec![Series {
                    name: "logit lens",
                    values: &logit,
                }],
                log_y: false,
            },
        ];
        let png = render_curves("SmolLM2", &x, &panels).unwrap();
        let (w, h, rgb) = decode(&png);
        assert_eq!((w, h), (1200, CURVE_PANEL_SIZE.1 + (30.0 * PT) as u32));
        assert!(count(&rgb, LINE_COLORS[0]) > 500);
        assert!(count(&rgb, LINE_COLORS[1]) > 200);
        // The right panel has only the first colour.
        let right_orange = rgb
            .chunks_exact(3)
            .enumerate()
            .filter(|(i, p)| {
                (*i as u32 % w) >= CURVE_PANEL_SIZE.0
                    && p[0] == LINE_COLORS[1].0
                    && p[1] == LINE_COLORS[1].1
                    && p[2] == LINE_COLORS[1].2
            })
            .count();
        assert_eq!(right_orange, 0);
    }

    #[test]
    fn bad_series_are_errors_in_words() {
        let x = labels(4);
        let short = [1.0, 2.0];
        let nan = [1.0, f64::NAN, 2.0, 3.0];
        for (values, says) in [(&short[..], "2 values for 4"), (&nan[..], "NaN")] {
            let panels = [CurvePanel {
                title: "KL",
                series: vec![Series {
                    name: "logit lens",
                    values,
                }],
                log_y: false,
            }];
            let e = render_curves("t", &x, &panels).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        assert_eq!(render_curves("t", &x, &[]), Err(HeatmapError::NoPanels));
    }

    #[test]
    fn ticks_are_round_numbers_covering_the_data() {
        let y = YAxis {
            lo: 0.0,
            hi: 1.0,
            log: false,
        };
        let t: Vec<String> = y.ticks().into_iter().map(|(_, s)| s).collect();
        assert_eq!(t, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        let v = [0.0, 0.031, 7.9];
        let panel = CurvePanel {
            title: "KL",
            series: vec![Series {
                name: "a",
                values: &v,
            }],
            log_y: true,
        };
        let y = YAxis::fit(&panel);
        assert_eq!((y.lo, y.hi, y.log), (-2.0, 1.0, true));
        assert_eq!(y.frac(0.0), None);
        let t: Vec<String> = y.ticks().into_iter().map(|(_, s)| s).collect();
        assert_eq!(t, ["0.01", "0.1", "1", "10"]);
    }
}
