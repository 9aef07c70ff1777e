//! Where things go: axes rectangle, tick label font size and spacing, colour-bar ticks.
//!
//! Sizes follow matplotlib at 100 dpi (1 pt = 100/72 px) so the output keeps the
//! proportions of the original seaborn figures.

use crate::text::{line_height, measure, rotated_extent};

/// Pixels per typographic point at matplotlib's default 100 dpi.
pub(crate) const PT: f32 = 100.0 / 72.0;
/// matplotlib's major tick length and label padding (3.5 pt each).
pub(crate) const TICK_LEN: f32 = 3.5 * PT;
pub(crate) const TICK_PAD: f32 = 3.5 * PT;
/// Gap between tick labels and the axis label (matplotlib's labelpad, 4 pt).
pub(crate) const LABEL_PAD: f32 = 4.0 * PT;
/// Gap between the title and the axes (6 pt).
pub(crate) const TITLE_PAD: f32 = 6.0 * PT;
/// Rotation of the x tick labels, so long tokens do not overlap.
pub(crate) const X_LABEL_ANGLE: f32 = 45.0;
/// Labels longer than this many characters are cut and end in "…".
pub(crate) const MAX_LABEL_CHARS: usize = 12;

/// Pixel rectangle; edges are integers so cells and ticks stay crisp.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    pub fn width(&self) -> i32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> i32 {
        self.y1 - self.y0
    }
    pub fn offset(&self, dx: i32, dy: i32) -> Rect {
        Rect {
            x0: self.x0 + dx,
            y0: self.y0 + dy,
            x1: self.x1 + dx,
            y1: self.y1 + dy,
        }
    }
}

/// Fonts and decorations of one kind of panel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Style {
    pub title_em: f32,
    /// Tick label size when there is room, and the smallest it may shrink to.
    pub tick_em: f32,
    pub tick_min_em: f32,
    /// Size of "Key Token" / "Query Token"; `None` draws no axis labels.
    pub axis_label_em: Option<f32>,
    /// Colour bar tick label size; `None` draws no colour bar.
    pub colorbar_em: Option<f32>,
    /// Blank border around the panel.
    pub pad: f32,
}

/// Single heatmap: matplotlib defaults (10 pt text, 12 pt title).
pub(crate) const SINGLE: Style = Style {
    title_em: 12.0 * PT,
    tick_em: 10.0 * PT,
    tick_min_em: 6.5 * PT,
    axis_label_em: Some(10.0 * PT),
    colorbar_em: Some(10.0 * PT),
    pad: 1.08 * 10.0 * PT,
};

/// Grid panel: the original used 8 pt tick labels and no colour bar.
pub(crate) const GRID: Style = Style {
    title_em: 12.0 * PT,
    tick_em: 8.0 * PT,
    tick_min_em: 6.0 * PT,
    axis_label_em: None,
    colorbar_em: None,
    pad: 0.6 * 10.0 * PT,
};

/// Everything the renderer needs to place one heatmap panel.
#[derive(Clone, Debug)]
pub(crate) struct PanelLayout {
    /// The whole panel (the image for a single heatmap).
    pub region: Rect,
    /// The cells' area.
    pub axes: Rect,
    pub n: usize,
    pub tick_em: f32,
    /// Every `step_x`-th column and `step_y`-th row gets a tick label.
    pub step_x: usize,
    pub step_y: usize,
    /// Right edge of the widest y tick label's slot (for the y axis label).
    pub y_labels_left: f32,
    /// Bottom of the lowest x tick label (for the x axis label).
    pub x_labels_bottom: f32,
    pub colorbar: Option<Rect>,
    /// Colour bar ticks: (value, text).
    pub colorbar_ticks: Vec<(f64, String)>,
}

impl PanelLayout {
    /// The same layout moved by (dx, dy) pixels (grid panels).
    pub fn offset(mut self, dx: i32, dy: i32) -> PanelLayout {
        self.region = self.region.offset(dx, dy);
        self.axes = self.axes.offset(dx, dy);
        self.colorbar = self.colorbar.map(|r| r.offset(dx, dy));
        self.y_labels_left += dx as f32;
        self.x_labels_bottom += dy as f32;
        self
    }
    /// Left pixel edge of column `j` (0..=n).
    pub fn col_edge(&self, j: usize) -> i32 {
        edge(self.axes.x0, self.axes.width(), j, self.n)
    }
    /// Top pixel edge of row `i` (0..=n).
    pub fn row_edge(&self, i: usize) -> i32 {
        edge(self.axes.y0, self.axes.height(), i, self.n)
    }
    /// Pixel rectangle of cell (row `i`, column `j`); the tests use it to find cells.
    #[cfg(test)]
    pub fn cell(&self, i: usize, j: usize) -> Rect {
        Rect {
            x0: self.col_edge(j),
            y0: self.row_edge(i),
            x1: self.col_edge(j + 1),
            y1: self.row_edge(i + 1),
        }
    }
}

fn edge(start: i32, len: i32, k: usize, n: usize) -> i32 {
    start + ((k as f64) * f64::from(len) / n as f64).round() as i32
}

/// Makes a token printable on one line: control characters become escapes
/// (a raw newline would otherwise draw as a missing-glyph box).
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Tick label text: printable and at most `MAX_LABEL_CHARS` characters plus "…".
pub(crate) fn short_label(token: &str) -> String {
    let p = printable(token);
    if p.chars().count() <= MAX_LABEL_CHARS {
        return p;
    }
    let mut s: String = p.chars().take(MAX_LABEL_CHARS).collect();
    s.push('…');
    s
}

/// A title wider than `max_w` shrinks to 2/3 of its size, then is cut and ends
/// in "…" (matplotlib would let it run off the figure). Returns the text and size.
pub(crate) fn fit_title(title: &str, style: &Style, max_w: f32) -> (String, f32) {
    // Nothing longer than this fits even at the smallest size; bounds the work for huge input.
    let head: String = title.chars().take(400).collect();
    let cut_off = head.len() < title.len();
    let mut em = style.title_em;
    while measure(&head, em).0 > max_w && em > style.title_em * 0.67 {
        em -= 0.5;
    }
    if !cut_off && measure(&head, em).0 <= max_w {
        return (head, em);
    }
    let mut chars: Vec<char> = head.chars().collect();
    while chars.pop().is_some() {
        let cut: String = chars.iter().chain(['…'].iter()).collect();
        if measure(&cut, em).0 <= max_w {
            return (cut, em);
        }
    }
    ("…".to_owned(), em)
}

/// Picks one tick label size for both axes and how many labels to skip so that
/// neighbours do not overlap: shrink the font first, then skip labels.
pub(crate) fn choose_ticks(pitch_x: f32, pitch_y: f32, style: &Style) -> (f32, usize, usize) {
    // Horizontal y labels need a line of height per row; 45-degree x labels are
    // spaced pitch*sin(45) apart perpendicular to their direction.
    let need_y = |em: f32| line_height(em) * 1.05;
    let need_x = |em: f32| line_height(em) / X_LABEL_ANGLE.to_radians().sin();
    let fits = |em: f32| need_y(em) <= pitch_y && need_x(em) <= pitch_x;
    let mut em = style.tick_em;
    while em > style.tick_min_em && !fits(em) {
        em = (em - 0.25).max(style.tick_min_em);
    }
    let step = |need: f32, pitch: f32| ((need / pitch.max(1e-3)).ceil() as usize).max(1);
    (em, step(need_x(em), pitch_x), step(need_y(em), pitch_y))
}

/// matplotlib's "nonsingular" expansion: a constant matrix gets a range around
/// its value, so normalising never divides by zero and its cells are mid-scale.
pub(crate) fn display_range(min: f64, max: f64) -> (f64, f64) {
    let big = min.abs().max(max.abs());
    if max - min > big * 1e-12 && max > min {
        return (min, max);
    }
    if big == 0.0 {
        (-0.1, 0.1)
    } else {
        (min - 0.1 * min.abs(), max + 0.1 * max.abs())
    }
}

/// "Nice" colour bar ticks (steps of 1, 2, 2.5 or 5 times a power of ten), at most `max_ticks`.
pub(crate) fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<(f64, String)> {
    let range = hi - lo;
    // NaN is not finite, so it is caught here too.
    if range <= 0.0 || !range.is_finite() {
        return vec![(lo, format_tick(lo, 1.0))];
    }
    let mut exp = (range / max_ticks.max(1) as f64).log10().floor() as i32 - 1;
    loop {
        for m in [1.0, 2.0, 2.5, 5.0] {
            let step = m * 10f64.powi(exp);
            let first = (lo / step - 1e-9).ceil() as i64;
            let last = (hi / step + 1e-9).floor() as i64;
            let count = (last - first + 1).max(0) as usize;
            if count <= max_ticks {
                return (first..=last)
                    .map(|k| {
                        let v = k as f64 * step;
                        (v, format_tick(v, step))
                    })
                    .collect();
            }
        }
        exp += 1;
    }
}

/// Formats a tick with just enough decimals for its step; matplotlib's minus sign.
fn format_tick(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    let text = if v != 0.0 && (v.abs() >= 1e6 || step < 1e-4) {
        let s = format!("{v:.3e}");
        // Trim "1.500e-5" to "1.5e-5".
        match s.split_once('e') {
            Some((m, e)) => {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{e}")
            }
            None => s,
        }
    } else {
        let mut decimals = (-step.log10().floor()).max(0.0) as usize;
        // Steps like 0.25 need one more digit than their power of ten.
        let scaled = step * 10f64.powi(decimals as i32);
        if (scaled - scaled.round()).abs() > 1e-6 {
            decimals += 1;
        }
        format!("{v:.decimals$}")
    };
    text.replace('-', "\u{2212}")
}

/// Lays out one panel inside `region`. `labels` are the shortened tick labels;
/// `range` is the colour scale, used for the colour bar ticks.
pub(crate) fn layout_panel(
    region: Rect,
    labels: &[String],
    title: &str,
    style: &Style,
    range: (f64, f64),
) -> PanelLayout {
    let n = labels.len();
    let pad = style.pad;
    let region_w = region.width() as f32;

    let (_, title_em) = fit_title(title, style, region_w - 2.0 * pad);
    let top = pad + line_height(title_em) + TITLE_PAD;
    let axis_label_h = style
        .axis_label_em
        .map_or(0.0, |em| line_height(em) + LABEL_PAD);

    // Start from a guess and refine: label sizes depend on cell pitch, which
    // depends on the margins the labels need. Three rounds settle it.
    let mut axes = Rect {
        x0: region.x0 + (region.width() as f32 * 0.15) as i32,
        y0: region.y0 + top.ceil() as i32,
        x1: region.x1 - (region.width() as f32 * 0.15) as i32,
        y1: region.y1 - (region.height() as f32 * 0.15) as i32,
    };
    let mut result = None;
    for _ in 0..3 {
        let pitch_x = axes.width().max(1) as f32 / n as f32;
        let pitch_y = axes.height().max(1) as f32 / n as f32;
        let (tick_em, step_x, step_y) = choose_ticks(pitch_x, pitch_y, style);

        let mut label_w = 0.0f32;
        let mut x_label_h = 0.0f32;
        let mut overhang = 0.0f32;
        for (k, label) in labels.iter().enumerate() {
            if k % step_y == 0 {
                label_w = label_w.max(measure(label, tick_em).0);
            }
            if k % step_x == 0 {
                let (ew, eh) = rotated_extent(label, tick_em, X_LABEL_ANGLE);
                x_label_h = x_label_h.max(eh);
                // Right-aligned at the tick, so long early labels reach left of the axes.
                overhang = overhang.max(ew - (k as f32 + 0.5) * pitch_x);
            }
        }

        let left = (pad + axis_label_h + label_w + TICK_LEN + TICK_PAD).max(pad + overhang);
        let bottom = TICK_LEN + TICK_PAD + x_label_h + axis_label_h + pad;
        let (right, colorbar_ticks, cb_w, cb_gap) = match style.colorbar_em {
            Some(em) => {
                let max_ticks = ((axes.height() as f32 / 90.0) as usize).clamp(3, 10);
                let ticks = nice_ticks(range.0, range.1, max_ticks);
                let tw = ticks
                    .iter()
                    .map(|(_, t)| measure(t, em).0)
                    .fold(0.0f32, f32::max);
                // matplotlib's colour bar: about 1/27 of the axes height wide, 0.05 of the figure away.
                let cb_w = (axes.height() as f32 / 27.0).round().clamp(8.0, 40.0);
                let cb_gap = region_w * 0.04;
                (
                    cb_gap + cb_w + TICK_LEN + TICK_PAD + tw + pad,
                    ticks,
                    cb_w,
                    cb_gap,
                )
            }
            None => (pad, Vec::new(), 0.0, 0.0),
        };

        axes = Rect {
            x0: region.x0 + left.ceil() as i32,
            y0: region.y0 + top.ceil() as i32,
            x1: region.x1 - right.ceil() as i32,
            y1: region.y1 - bottom.ceil() as i32,
        };
        // A degenerate region (never with the fixed figure sizes) still gets one pixel per side.
        axes.x1 = axes.x1.max(axes.x0 + 1);
        axes.y1 = axes.y1.max(axes.y0 + 1);
        let colorbar = style.colorbar_em.map(|_| Rect {
            x0: axes.x1 + cb_gap.round() as i32,
            y0: axes.y0,
            x1: axes.x1 + (cb_gap + cb_w).round() as i32,
            y1: axes.y1,
        });
        result = Some(PanelLayout {
            region,
            axes,
            n,
            tick_em,
            step_x,
            step_y,
            y_labels_left: axes.x0 as f32 - TICK_LEN - TICK_PAD - label_w,
            x_labels_bottom: axes.y1 as f32 + TICK_LEN + TICK_PAD + x_label_h,
            colorbar,
            colorbar_ticks,
        });
    }
    let mut layout = result.expect("the loop runs at least once");
    // Labels were chosen for the previous round's axes; recheck against the final pitch.
    let (em, sx, sy) = choose_ticks(
        layout.axes.width() as f32 / n as f32,
        layout.axes.height() as f32 / n as f32,
        style,
    );
    layout.tick_em = layout.tick_em.min(em);
    layout.step_x = layout.step_x.max(sx);
    layout.step_y = layout.step_y.max(sy);
    layout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_shortened_and_escaped() {
        assert_eq!(short_label("abc"), "abc");
        assert_eq!(short_label("a\nb"), "a\\nb");
        assert_eq!(short_label("supercalifragilistic"), "supercalifra…");
        assert_eq!(
            short_label("你好世界你好世界你好世界你好"),
            "你好世界你好世界你好世界…"
        );
    }

    #[test]
    fn long_titles_shrink_then_cut() {
        let (t, em) = fit_title("Layer 0", &SINGLE, 1000.0);
        assert_eq!((t.as_str(), em), ("Layer 0", SINGLE.title_em));
        let long = "W".repeat(100_000);
        let (t, em) = fit_title(&long, &SINGLE, 1000.0);
        assert!(t.ends_with('…') && em < SINGLE.title_em);
        assert!(measure(&t, em).0 <= 1000.0);
    }

    #[test]
    fn ticks_are_nice() {
        let t: Vec<String> = nice_ticks(0.0, 1.0, 8).into_iter().map(|t| t.1).collect();
        assert_eq!(t, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let t: Vec<String> = nice_ticks(-0.013, 0.041, 8)
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(t, ["\u{2212}0.01", "0.00", "0.01", "0.02", "0.03", "0.04"]);
        let t = nice_ticks(0.9, 1.1, 8);
        assert!(t.len() >= 3 && t.len() <= 8, "{t:?}");
        let t = nice_ticks(1e-7, 5e-7, 6);
        assert!(t.iter().all(|(_, s)| s.contains('e')), "{t:?}");
    }

    #[test]
    fn constant_range_is_expanded() {
        assert_eq!(display_range(0.0, 0.0), (-0.1, 0.1));
        let (lo, hi) = display_range(0.5, 0.5);
        assert!(lo < 0.5 && hi > 0.5);
        assert_eq!(display_range(0.0, 1.0), (0.0, 1.0));
    }

    #[test]
    fn many_tokens_skip_labels() {
        let (_, sx, sy) = choose_ticks(4.0, 4.0, &SINGLE);
        assert!(sx > 1 && sy > 1);
        let (em, sx, sy) = choose_ticks(40.0, 40.0, &SINGLE);
        assert_eq!((em, sx, sy), (SINGLE.tick_em, 1, 1));
    }
}
