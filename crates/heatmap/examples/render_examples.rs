//! Writes example heatmaps to a folder (default /tmp/heatmap-examples) and prints render times.
//!
//! cargo run --release -p logitlens-heatmap --example render_examples [-- OUT_DIR]

use logitlens_heatmap::{render_grid, render_heatmap, GridKind};
use std::time::Instant;

/// Causal attention-like rows: random weights below the diagonal, each row summing to 1.
fn attention(t: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        // 64-bit LCG: deterministic without a rand dependency.
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32).powi(3)
    };
    (0..t)
        .map(|q| {
            let mut row: Vec<f32> = (0..t)
                .map(|k| if k <= q { next() + 1e-3 } else { 0.0 })
                .collect();
            let sum: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= sum);
            row
        })
        .collect()
}

fn tokens(t: usize) -> Vec<String> {
    let words = [
        "<|begin_of_text|>",
        "The",
        "␣quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        ".",
        "\\n",
        "你好",
        "🙂",
        "supercalifragilistic",
        "$x$",
        "naïve",
        "❤️",
        "Ж",
        "\t",
    ];
    (0..t)
        .map(|i| {
            if i < words.len() {
                words[i].to_string()
            } else {
                format!("tok{i}")
            }
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/heatmap-examples".into());
    std::fs::create_dir_all(&dir)?;
    let save = |name: &str, png: &[u8]| -> std::io::Result<()> {
        let path = format!("{dir}/{name}");
        std::fs::write(&path, png)?;
        println!("wrote {path}");
        Ok(())
    };

    let toks = tokens(20);
    let png = render_heatmap(
        &attention(20, 1),
        &toks,
        "Layer 3 Head 5: $x$ attention (plain text)",
    )?;
    save("heatmap_20_tokens.png", &png)?;

    let toks200 = tokens(200);
    let m200 = attention(200, 2);
    let start = Instant::now();
    let png = render_heatmap(&m200, &toks200, "200 tokens")?;
    println!("single heatmap, 200 tokens: {:?}", start.elapsed());
    save("heatmap_200_tokens.png", &png)?;

    let panels: Vec<_> = (0..5).map(|i| attention(20, 10 + i)).collect();
    save(
        "grid_5_layers.png",
        &render_grid(&panels, &toks, GridKind::Layers)?,
    )?;
    save(
        "grid_1_head.png",
        &render_grid(&panels[..1], &toks, GridKind::Heads)?,
    )?;

    let toks50 = tokens(50);
    let panels: Vec<_> = (0..32).map(|i| attention(50, 100 + i)).collect();
    let start = Instant::now();
    let png = render_grid(&panels, &toks50, GridKind::Heads)?;
    println!("grid, 32 panels of 50 tokens: {:?}", start.elapsed());
    save("grid_32_heads_50_tokens.png", &png)?;

    // Worst case the limits allow, timed but not saved (the grid PNG is ~100 MB).
    let toks512 = tokens(512);
    let m512 = attention(512, 3);
    let start = Instant::now();
    render_heatmap(&m512, &toks512, "512 tokens")?;
    println!("single heatmap, 512 tokens: {:?}", start.elapsed());
    let panels = vec![m512; 256];
    let start = Instant::now();
    render_grid(&panels, &toks512, GridKind::Layers)?;
    println!("grid, 256 panels of 512 tokens: {:?}", start.elapsed());

    let constant = vec![vec![0.25f32; 4]; 4];
    save(
        "heatmap_constant.png",
        &render_heatmap(&constant, &tokens(4), "constant 0.25")?,
    )?;
    Ok(())
}
