//! Text tables at the terminal: tokens shown as the web app shows them,
//! cells clipped to a width, and the lens grid `lens` and `generate` print.

use logitlens_engine::LensRow;

/// Whitespace made visible, as the web app shows tokens.
pub fn show(tok: &str) -> String {
    let s = tok
        .replace('\n', "\\n")
        .replace('\t', "\\t")
        .replace('\r', "\\r");
    if s.trim().is_empty() {
        "␣".repeat(s.chars().count().max(1))
    } else {
        s.replace(' ', "␣")
    }
}

/// `s` in exactly `w` characters: padded, or cut with an ellipsis.
fn clip(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s:<w$}")
    } else {
        let mut out: String = s.chars().take(w - 1).collect();
        out.push('…');
        out
    }
}

/// Layers down, positions across: the top-1 token and its probability.
pub fn lens_grid(input_tokens: &[String], logit_lens: &[LensRow]) -> String {
    const CELL: usize = 12;
    let name_w = logit_lens
        .iter()
        .map(|row| row.layer_name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = String::new();
    out.push_str(&format!("{:<name_w$} ", "input"));
    for (i, t) in input_tokens.iter().enumerate() {
        out.push_str(&clip(&format!("{i}:{}", show(t)), CELL));
        out.push(' ');
    }
    out.push('\n');
    for row in logit_lens {
        out.push_str(&format!("{:<name_w$} ", row.layer_name));
        for preds in &row.predictions {
            let top = &preds[0];
            let p = format!("{:.2}", top.prob);
            let tok = clip(&show(&top.token), CELL - p.len() - 1);
            out.push_str(&format!("{tok} {p} "));
        }
        out.push('\n');
    }
    out
}
