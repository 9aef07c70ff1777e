//! Public API: image sizes, error cases and awkward tokens.

use logitlens_heatmap::{
    render_grid, render_heatmap, GridKind, HeatmapError, MAX_PANELS, MAX_TOKENS,
};
use std::io::Cursor;

fn size(png_bytes: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(Cursor::new(png_bytes))
        .read_info()
        .expect("valid PNG");
    let info = reader.info();
    (info.width, info.height)
}

fn tokens(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("tok{i}")).collect()
}

/// Row-normalised lower-triangular matrix, like causal attention.
fn causal(n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|q| {
            (0..n)
                .map(|k| if k <= q { 1.0 / (q + 1) as f32 } else { 0.0 })
                .collect()
        })
        .collect()
}

#[test]
fn single_heatmap_is_1200_by_1000() {
    let png = render_heatmap(&causal(10), &tokens(10), "Layer 0 Head 0").unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(size(&png), (1200, 1000));
}

#[test]
fn grid_sizes() {
    for (n, height) in [(1, 400), (4, 400), (5, 800), (32, 3200)] {
        let panels = vec![causal(12); n];
        let png = render_grid(&panels, &tokens(12), GridKind::Layers).unwrap();
        assert_eq!(size(&png), (2000, height), "{n} panels");
    }
    let png = render_grid(&[causal(3)], &tokens(3), GridKind::Heads).unwrap();
    assert_eq!(size(&png), (2000, 400));
}

#[test]
fn one_token_and_many_tokens() {
    assert_eq!(
        size(&render_heatmap(&causal(1), &tokens(1), "one").unwrap()),
        (1200, 1000)
    );
    let n = MAX_TOKENS;
    assert_eq!(
        size(&render_heatmap(&causal(n), &tokens(n), "max").unwrap()),
        (1200, 1000)
    );
    assert_eq!(
        size(&render_grid(&[causal(n)], &tokens(n), GridKind::Heads).unwrap()),
        (2000, 400)
    );
}

#[test]
fn unicode_tokens_and_title_render() {
    let toks: Vec<String> = [
        "␣the",
        "\\n",
        "\n",
        "\t",
        "你好世界",
        "🙂",
        "👩‍👩‍👧",
        "❤️",
        "\u{0}",
        "",
        " ",
        "a\u{301}",
        "עברית",
        "\u{10ffff}",
        "a-very-long-token-that-must-be-shortened",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let m = causal(toks.len());
    let png = render_heatmap(&m, &toks, "$x$ \\frac{1}{2} 🙂 你好 \n plain").unwrap();
    assert_eq!(size(&png), (1200, 1000));
    let png = render_grid(&[m.clone(), m], &toks, GridKind::Heads).unwrap();
    assert_eq!(size(&png), (2000, 400));
    let long_title = "x".repeat(2000);
    assert_eq!(
        size(&render_heatmap(&causal(2), &tokens(2), &long_title).unwrap()),
        (1200, 1000)
    );
    assert!(render_heatmap(&causal(2), &tokens(2), "").is_ok());
}

#[test]
fn negative_and_huge_values_render() {
    let m = vec![vec![-3.0e7f32, 1.0], vec![0.0, 2.5e8]];
    assert!(render_heatmap(&m, &tokens(2), "big").is_ok());
    let m = vec![vec![1e-9f32, 2e-9], vec![3e-9, 4e-9]];
    assert!(render_heatmap(&m, &tokens(2), "tiny").is_ok());
    let m = vec![vec![0.0f32; 2]; 2];
    assert!(render_heatmap(&m, &tokens(2), "zeros").is_ok());
}

fn err_heatmap(m: &[Vec<f32>], n: usize) -> HeatmapError {
    render_heatmap(m, &tokens(n), "t").unwrap_err()
}

#[test]
fn shape_errors_name_the_sizes() {
    let e = err_heatmap(&causal(3), 4);
    assert_eq!(
        e,
        HeatmapError::RowCount {
            panel: None,
            rows: 3,
            tokens: 4
        }
    );
    assert_eq!(
        e.to_string(),
        "attention matrix has 3 rows but there are 4 tokens: expected 4 x 4"
    );

    let mut m = causal(3);
    m[1].push(0.0);
    let e = err_heatmap(&m, 3);
    assert_eq!(
        e,
        HeatmapError::RowLength {
            panel: None,
            row: 1,
            len: 4,
            tokens: 3
        }
    );
    assert_eq!(
        e.to_string(),
        "row 1 of the attention matrix has 4 values but there are 3 tokens: expected 3 x 3"
    );

    // Square but not matching the tokens.
    let e = err_heatmap(&causal(5), 3);
    assert!(
        e.to_string().contains("5 rows") && e.to_string().contains("3 x 3"),
        "{e}"
    );

    let e = render_grid(&[causal(3), causal(2)], &tokens(3), GridKind::Layers).unwrap_err();
    assert_eq!(
        e,
        HeatmapError::RowCount {
            panel: Some(1),
            rows: 2,
            tokens: 3
        }
    );
    assert!(e.to_string().starts_with("panel 1: "), "{e}");
}

#[test]
fn empty_matrix_is_an_error() {
    let e = err_heatmap(&[], 0);
    assert_eq!(e, HeatmapError::EmptyMatrix { panel: None });
    assert!(e.to_string().contains("empty"), "{e}");
    assert_eq!(
        err_heatmap(&[], 3),
        HeatmapError::EmptyMatrix { panel: None }
    );
    assert_eq!(
        err_heatmap(&[vec![], vec![]], 2),
        HeatmapError::EmptyMatrix { panel: None }
    );
    let e = err_heatmap(&causal(2), 0);
    assert_eq!(
        e,
        HeatmapError::NoTokens {
            panel: None,
            rows: 2
        }
    );
    assert!(e.to_string().contains("no tokens"), "{e}");
    let e = render_grid(&[causal(2), vec![]], &tokens(2), GridKind::Heads).unwrap_err();
    assert_eq!(e, HeatmapError::EmptyMatrix { panel: Some(1) });
}

#[test]
fn non_finite_values_are_errors() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut m = causal(3);
        m[2][1] = bad;
        let e = err_heatmap(&m, 3);
        assert!(
            matches!(
                e,
                HeatmapError::NonFinite {
                    panel: None,
                    row: 2,
                    col: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("row 2, column 1") && text.contains("finite"),
            "{text}"
        );
    }
    let mut m = causal(2);
    m[0][0] = f32::NAN;
    let e = render_grid(&[causal(2), m], &tokens(2), GridKind::Heads).unwrap_err();
    assert!(
        e.to_string().starts_with("panel 1: ") && e.to_string().contains("NaN"),
        "{e}"
    );
}

#[test]
fn limits_are_errors() {
    let n = MAX_TOKENS + 1;
    let e = err_heatmap(&causal(n), n);
    assert_eq!(
        e,
        HeatmapError::TooManyTokens {
            count: n,
            max: MAX_TOKENS
        }
    );
    assert_eq!(
        e.to_string(),
        format!("too many tokens: {n} (at most {MAX_TOKENS} can be drawn)")
    );

    let e = render_grid(&[], &tokens(2), GridKind::Layers).unwrap_err();
    assert_eq!(e, HeatmapError::NoPanels);
    assert!(e.to_string().contains("at least one"), "{e}");

    let panels = vec![causal(2); MAX_PANELS + 1];
    let e = render_grid(&panels, &tokens(2), GridKind::Layers).unwrap_err();
    assert_eq!(
        e,
        HeatmapError::TooManyPanels {
            count: MAX_PANELS + 1,
            max: MAX_PANELS
        }
    );
    assert!(e.to_string().contains(&MAX_PANELS.to_string()), "{e}");
}
