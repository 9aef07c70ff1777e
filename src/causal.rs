//! The causal tools at the terminal: `logitlens patch`,
//! `logitlens lens --attribution` and `logitlens generate`: their
//! arguments, progress and output.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use logitlens_engine::api::{AttributionQuery, MetricQuery, PatchQuery, PatchResponse};
use logitlens_engine::model::Attribution;
use logitlens_engine::run::{AttributionRequest, PatchRequest};
use logitlens_engine::types::{Stage, Watch};

use crate::show;

/// `--attribution '{"token": " Paris", "position": -1}'`.
pub fn parse_attribution(arg: &str) -> Result<AttributionRequest> {
    let q: AttributionQuery = serde_json::from_str(arg).context(
        "--attribution must be a JSON object {\"token\": TOKEN, \"position\": -1}, \
         a TOKEN being an id or a string that is one token",
    )?;
    Ok(AttributionRequest {
        token: q.token,
        position: q.position,
    })
}

/// The sweep the arguments of `logitlens patch` ask for, as POST /patch
/// would take it.
pub fn patch_request(
    clean_text: String,
    corrupted_text: String,
    hook: String,
    metric: &str,
    positions: &str,
    apply_chat_template: bool,
) -> Result<PatchRequest> {
    let metric: MetricQuery = serde_json::from_str(metric).context(
        "--metric must be JSON: {\"type\": \"logit_diff\", \"correct\": TOKEN, \"wrong\": TOKEN} \
         or {\"type\": \"prob\", \"token\": TOKEN}",
    )?;
    let positions = match positions.trim() {
        "all" => None,
        list => Some(serde_json::Value::from(
            list.split(',')
                .map(|p| {
                    p.trim().parse::<i64>().with_context(|| {
                        format!("--positions: {p:?} is not a position; give \"all\" or e.g. 0,3,-1")
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        )),
    };
    let query = PatchQuery {
        clean_text,
        corrupted_text,
        hook,
        metric,
        positions,
        apply_chat_template,
    };
    Ok(PatchRequest::try_from(query)?)
}

/// "patched runs 40/300" on stderr.
pub struct PatchProgress;

impl Watch for PatchProgress {
    fn progress(&self, stage: Stage, done: usize, total: usize) {
        if stage == Stage::Patch {
            eprint!("\rpatched runs {done}/{total}");
        }
    }
}

/// Layers down, patched positions across: the normalized metric (the share
/// of the clean-corrupted gap the patch restores), or the metric itself
/// when the two runs agree.
pub fn patch_table(r: &PatchResponse) -> String {
    const CELL: usize = 9;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} patched at each layer and position: metric clean {:.4}, corrupted {:.4} ({:.2} s)",
        r.hook, r.clean, r.corrupted, r.seconds
    );
    let normalized = r.clean != r.corrupted;
    let _ = writeln!(
        out,
        "{}",
        if normalized {
            "values: (patched - corrupted) / (clean - corrupted); 1 = the clean run's metric restored"
        } else {
            "values: the patched metric (clean and corrupted agree, so nothing to normalize by)"
        }
    );
    let _ = writeln!(
        out,
        "columns: position:token (corrupted/clean where the texts differ)"
    );
    let _ = write!(out, "{:<8}", "layer");
    for &p in &r.positions {
        let (c, x) = (&r.tokens_clean[p], &r.tokens_corrupted[p]);
        let label = if c == x {
            format!("{p}:{}", show(c))
        } else {
            format!("{p}:{}/{}", show(x), show(c))
        };
        let label: String = label.chars().take(CELL).collect();
        let _ = write!(out, " {label:>CELL$}");
    }
    out.push('\n');
    for (l, row) in r.values.iter().enumerate() {
        let _ = write!(out, "{l:<8}");
        for (j, v) in row.iter().enumerate() {
            let shown = if normalized {
                r.normalized[l][j].unwrap_or(f64::NAN)
            } else {
                *v
            };
            let _ = write!(out, " {shown:>CELL$.3}");
        }
        out.push('\n');
    }
    out
}

/// The shares of an attributed logit, a layer a line, and their sum.
pub fn attribution_table((a, token): &(Attribution, String)) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "logit of {} (id {}) at position {}: {:.4}",
        show(token),
        a.token_id,
        a.position,
        a.logit
    );
    let _ = writeln!(out, "{:<8} {:>10} {:>10}  heads", "layer", "attn", "mlp");
    let _ = writeln!(out, "{:<8} {:>10.4}", "embed", a.embed);
    for (l, heads) in a.heads.iter().enumerate() {
        let heads: Vec<String> = heads.iter().map(|h| format!("{h:.3}")).collect();
        let _ = writeln!(
            out,
            "{l:<8} {:>10.4} {:>10.4}  {}",
            a.attn[l],
            a.mlp[l],
            heads.join(" ")
        );
    }
    for (name, v) in &a.rest_parts {
        let _ = writeln!(out, "rest: {name} {v:.4}");
    }
    let sum = a.embed + a.attn.iter().sum::<f64>() + a.mlp.iter().sum::<f64>() + a.rest;
    let _ = writeln!(
        out,
        "embed + attn + mlp + rest = {sum:.4} (the logit: {:.4})",
        a.logit
    );
    out
}

/// `logitlens generate`: the continuation printed as it is written (or the
/// /generate body with `json`), then the lens over the whole sequence.
pub fn generate(
    model: &logitlens_engine::LoadedModel,
    req: &logitlens_engine::run::GenerationRequest,
    json: bool,
) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let out = model.generate_run(req, &[], &logitlens_engine::types::Unwatched, &mut |s| {
        if !json {
            if let Some((_, token)) = &s.token {
                let _ = write!(stdout, "{token}");
                let _ = stdout.flush();
            }
        }
        Ok(())
    })?;
    if json {
        let written = logitlens_engine::api::Written::new(&out);
        logitlens_engine::api::write_generation(
            &out.run.answer,
            &out.run.state.capture.patterns,
            &written,
            &mut stdout,
        )?;
        writeln!(stdout)?;
        return Ok(());
    }
    writeln!(stdout)?;
    if out.stopped_at_eos {
        writeln!(stdout, "(stopped at the eos token)")?;
    }
    if let Some(b) = &out.baseline {
        writeln!(stdout, "without the interventions: {}", b.text)?;
        match b.first_difference {
            Some(i) => writeln!(
                stdout,
                "the interventions change what is written from token {i} on"
            )?,
            None => writeln!(stdout, "the interventions do not change what is written")?,
        }
    }
    writeln!(
        stdout,
        "\nthe lens over the {} prompt and {} written tokens:",
        out.prompt_tokens,
        out.generated_ids.len()
    )?;
    write!(
        stdout,
        "{}",
        crate::render_table(&out.run.answer.input_tokens, &out.run.answer.logit_lens)
    )?;
    Ok(())
}
