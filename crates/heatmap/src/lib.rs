//! Attention heatmaps rendered to PNG bytes, in the look of the original tool's
//! seaborn figures (viridis, token tick labels, colour bar), and line charts
//! of a lens's quality per layer, without Python, system fonts or C libraries: DejaVu Sans is embedded (see assets/LICENSE-DejaVu.txt).

mod colormap;
mod curves;
mod layout;
mod render;
mod text;

use layout::{display_range, layout_panel, short_label, Rect, GRID, SINGLE};
use render::{draw_panel, render_png, Panel};

pub use curves::{render_curves, CurvePanel, Series, CURVE_COLUMNS, CURVE_PANEL_SIZE};

/// Most tokens a heatmap accepts. Bounds memory and time; at this size a grid
/// panel's cells are already narrower than a pixel.
pub const MAX_TOKENS: usize = 512;
/// Most panels a grid accepts (64 rows, a 2000 x 25600 image).
pub const MAX_PANELS: usize = 256;

/// Size of [`render_heatmap`]'s image (matplotlib's 12 x 10 in at 100 dpi).
pub const HEATMAP_SIZE: (u32, u32) = (1200, 1000);
/// Grid panels per row.
pub const GRID_COLUMNS: usize = 4;
/// Size of one grid panel (matplotlib's 5 x 4 in per panel at 100 dpi).
pub const GRID_PANEL_SIZE: (u32, u32) = (500, 400);

/// What the panels of a grid are, which sets their titles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridKind {
    /// Titled "Layer {i}".
    Layers,
    /// Titled "Head {i}".
    Heads,
}

/// Why a heatmap could not be drawn. `panel` is the grid panel index, `None` for a single heatmap.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HeatmapError {
    #[error("{}attention matrix is empty: expected a T x T matrix with one row and column per token", at(*panel))]
    EmptyMatrix { panel: Option<usize> },
    #[error("{}attention matrix has {rows} rows but there are {tokens} tokens: expected {tokens} x {tokens}", at(*panel))]
    RowCount {
        panel: Option<usize>,
        rows: usize,
        tokens: usize,
    },
    #[error("{}row {row} of the attention matrix has {len} values but there are {tokens} tokens: expected {tokens} x {tokens}", at(*panel))]
    RowLength {
        panel: Option<usize>,
        row: usize,
        len: usize,
        tokens: usize,
    },
    #[error("{}attention matrix value at row {row}, column {col} is {value}: all values must be finite", at(*panel))]
    NonFinite {
        panel: Option<usize>,
        row: usize,
        col: usize,
        value: f32,
    },
    #[error("{}no tokens given for a {rows}-row attention matrix: expected one token per row and column", at(*panel))]
    NoTokens { panel: Option<usize>, rows: usize },
    #[error("too many tokens: {count} (at most {max} can be drawn)")]
    TooManyTokens { count: usize, max: usize },
    #[error("no panels to draw: a grid needs at least one matrix")]
    NoPanels,
    #[error("too many panels: {count} (a grid holds at most {max})")]
    TooManyPanels { count: usize, max: usize },
    #[error("chart: {0}")]
    Curve(String),
    #[error("rendering failed: {0}")]
    Render(String),
}

fn at(panel: Option<usize>) -> String {
    panel.map_or_else(String::new, |p| format!("panel {p}: "))
}

/// Checks that `matrix` is T x T with T == `tokens.len()` and finite; returns its (min, max).
fn validate(
    matrix: &[Vec<f32>],
    tokens: &[String],
    panel: Option<usize>,
) -> Result<(f64, f64), HeatmapError> {
    let t = tokens.len();
    if t > MAX_TOKENS {
        return Err(HeatmapError::TooManyTokens {
            count: t,
            max: MAX_TOKENS,
        });
    }
    if matrix.is_empty() || matrix.iter().all(Vec::is_empty) {
        return Err(HeatmapError::EmptyMatrix { panel });
    }
    if t == 0 {
        return Err(HeatmapError::NoTokens {
            panel,
            rows: matrix.len(),
        });
    }
    if matrix.len() != t {
        return Err(HeatmapError::RowCount {
            panel,
            rows: matrix.len(),
            tokens: t,
        });
    }
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for (row, values) in matrix.iter().enumerate() {
        if values.len() != t {
            return Err(HeatmapError::RowLength {
                panel,
                row,
                len: values.len(),
                tokens: t,
            });
        }
        for (col, &value) in values.iter().enumerate() {
            if !value.is_finite() {
                return Err(HeatmapError::NonFinite {
                    panel,
                    row,
                    col,
                    value,
                });
            }
            min = min.min(value);
            max = max.max(value);
        }
    }
    Ok((f64::from(min), f64::from(max)))
}

/// One heatmap: `matrix[query][key]` (rows = query tokens on the y axis, columns = key tokens on the x axis).
/// 1200 x 1000 px RGB PNG: viridis scaled from the data's min to max (a constant matrix gets a small
/// range around its value), colour bar on the right, x tick labels = tokens rotated 45 degrees,
/// y tick labels = tokens, "Key Token" / "Query Token" axis labels and `title` drawn as plain text.
pub fn render_heatmap(
    matrix: &[Vec<f32>],
    tokens: &[String],
    title: &str,
) -> Result<Vec<u8>, HeatmapError> {
    let (min, max) = validate(matrix, tokens, None)?;
    let range = display_range(min, max);
    let labels: Vec<String> = tokens.iter().map(|t| short_label(t)).collect();
    let title = layout::printable(title);
    let (w, h) = HEATMAP_SIZE;
    let layout = heatmap_layout(&labels, &title, range);
    render_png(w, h, |area| {
        let panel = Panel {
            matrix,
            labels: &labels,
            title: &title,
            range,
            style: &SINGLE,
        };
        draw_panel(area, &layout, &panel)
    })
}

fn heatmap_layout(labels: &[String], title: &str, range: (f64, f64)) -> layout::PanelLayout {
    let (w, h) = HEATMAP_SIZE;
    let region = Rect {
        x0: 0,
        y0: 0,
        x1: w as i32,
        y1: h as i32,
    };
    layout_panel(region, labels, title, &SINGLE, range)
}

/// A grid of heatmaps, 4 columns and ceil(N/4) rows: 2000 x (400 * rows) px. Each panel has its own
/// viridis scale, no colour bar, small token tick labels and the title "Layer {i}" or "Head {i}".
/// Unused panels are blank; there is no overall title.
pub fn render_grid(
    panels: &[Vec<Vec<f32>>],
    tokens: &[String],
    kind: GridKind,
) -> Result<Vec<u8>, HeatmapError> {
    if panels.is_empty() {
        return Err(HeatmapError::NoPanels);
    }
    if panels.len() > MAX_PANELS {
        return Err(HeatmapError::TooManyPanels {
            count: panels.len(),
            max: MAX_PANELS,
        });
    }
    let ranges = panels
        .iter()
        .enumerate()
        .map(|(i, m)| validate(m, tokens, Some(i)).map(|(lo, hi)| display_range(lo, hi)))
        .collect::<Result<Vec<_>, _>>()?;
    let labels: Vec<String> = tokens.iter().map(|t| short_label(t)).collect();
    let rows = panels.len().div_ceil(GRID_COLUMNS);
    let (pw, ph) = GRID_PANEL_SIZE;
    let width = pw * GRID_COLUMNS as u32;
    let height = ph * rows as u32;
    // Every panel has the same tokens, so one layout serves all (as tight_layout's uniform grid).
    let base = grid_layout(&labels);
    let name = match kind {
        GridKind::Layers => "Layer",
        GridKind::Heads => "Head",
    };
    render_png(width, height, |area| {
        for (i, (matrix, &range)) in panels.iter().zip(&ranges).enumerate() {
            let (dx, dy) = grid_offset(i);
            let layout = base.clone().offset(dx, dy);
            let title = format!("{name} {i}");
            let panel = Panel {
                matrix,
                labels: &labels,
                title: &title,
                range,
                style: &GRID,
            };
            draw_panel(area, &layout, &panel)?;
        }
        Ok(())
    })
}

fn grid_layout(labels: &[String]) -> layout::PanelLayout {
    let (pw, ph) = GRID_PANEL_SIZE;
    let region = Rect {
        x0: 0,
        y0: 0,
        x1: pw as i32,
        y1: ph as i32,
    };
    // Titles are "Layer 123" at most, far narrower than a panel, so any title gives the same layout.
    layout_panel(region, labels, "Layer 0", &GRID, (0.0, 1.0))
}

/// Top-left pixel of grid panel `i`.
fn grid_offset(i: usize) -> (i32, i32) {
    let (pw, ph) = GRID_PANEL_SIZE;
    (
        (i % GRID_COLUMNS) as i32 * pw as i32,
        (i / GRID_COLUMNS) as i32 * ph as i32,
    )
}

#[cfg(test)]
mod tests;
