//! Pictures: attention heatmaps saved as PNG into attention_visualizations/,
//! and the lens-quality chart of an evaluation.

use std::path::Path;

use logitlens_engine::ops::eval::{Evaluation, LensMetrics};
use logitlens_heatmap::{render_curves, CurvePanel, HeatmapError, Series};

use crate::error::{ApiError, ApiResult};

pub const VIZ_DIR: &str = "attention_visualizations";
const MAX_TITLE_IN_NAME: usize = 100;

/// Every character that is not alphanumeric becomes `_`, so a title can
/// never name a folder or a hidden file.
pub fn safe_title(title: &str) -> String {
    let s: String = title
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .take(MAX_TITLE_IN_NAME)
        .collect();
    if s.is_empty() {
        "untitled".into()
    } else {
        s
    }
}

/// Write `png` as `<YYYYMMDD_HHMMSS>_<safe_title>.png` (with `_2`, `_3`...
/// when that name is taken this second); returns the relative path.
pub fn save_png(data_dir: &Path, title: &str, png: &[u8]) -> ApiResult<String> {
    let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S").to_string();
    let base = format!("{stamp}_{}", safe_title(title));
    let dir = data_dir.join(VIZ_DIR);
    std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{base}.png")
        } else {
            format!("{base}_{n}.png")
        };
        let path = dir.join(&name);
        // create_new: a concurrent save of the same name can't overwrite us.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(png).map_err(ApiError::internal)?;
                return Ok(format!("{VIZ_DIR}/{name}"));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    Err(ApiError::conflict(
        "too many visualizations saved under this title this second",
    ))
}

/// The tuned-lens paper's picture of an evaluation: KL to the model's
/// output, next-token cross-entropy, entropy and top-1 agreement per row,
/// a line per lens. KL goes on a log axis when it spans two decades (the
/// final row's 0 is then left out), as early layers' KL dwarfs late ones'.
pub fn lens_quality_png(eval: &Evaluation, title: &str) -> Result<Vec<u8>, HeatmapError> {
    let lenses: Vec<(&str, &LensMetrics)> = std::iter::once(("logit lens", &eval.logit))
        .chain(eval.tuned.as_ref().map(|t| ("tuned lens", t)))
        .chain(eval.jacobian.as_ref().map(|j| ("Jacobian lens", j)))
        .collect();
    let series = |pick: fn(&LensMetrics) -> &Vec<f64>| -> Vec<Series> {
        lenses
            .iter()
            .map(|(name, m)| Series {
                name,
                values: pick(m),
            })
            .collect()
    };
    let kl: Vec<f64> = lenses
        .iter()
        .flat_map(|(_, m)| m.kl.iter().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let spread =
        kl.iter().copied().fold(0.0, f64::max) / kl.iter().copied().fold(f64::INFINITY, f64::min);
    let panels = [
        CurvePanel {
            title: "KL(final ‖ row), nats",
            series: series(|m| &m.kl),
            log_y: spread > 100.0,
        },
        CurvePanel {
            title: "Next-token cross-entropy, nats",
            series: series(|m| &m.ce),
            log_y: false,
        },
        CurvePanel {
            title: "Entropy, nats",
            series: series(|m| &m.entropy),
            log_y: false,
        },
        CurvePanel {
            title: "Top-1 agreement with the output",
            series: series(|m| &m.top1_agree),
            log_y: false,
        },
    ];
    render_curves(title, &eval.layers, &panels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_safe_file_names() {
        assert_eq!(
            safe_title("Llama-3.2-1B_The capita_L0_Mean"),
            "Llama_3_2_1B_The_capita_L0_Mean"
        );
        assert_eq!(safe_title("../../x"), "______x");
        assert_eq!(safe_title(""), "untitled");
        assert_eq!(safe_title("$x$ Head 2"), "_x__Head_2");
    }
}
