//! Pixel checks that need the internal layout: where a given cell lands.

use super::*;
use std::io::Cursor;

/// Decodes PNG bytes to (width, height, RGB rows).
fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(Cursor::new(png_bytes))
        .read_info()
        .expect("valid PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size fits")];
    let info = reader.next_frame(&mut buf).expect("one frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn pixel(img: &(u32, u32, Vec<u8>), x: i32, y: i32) -> [u8; 3] {
    let i = (y as usize * img.0 as usize + x as usize) * 3;
    [img.2[i], img.2[i + 1], img.2[i + 2]]
}

fn assert_close(got: [u8; 3], want: [u8; 3], what: &str) {
    let off = got
        .iter()
        .zip(want)
        .map(|(&g, w)| (i32::from(g) - i32::from(w)).abs())
        .max()
        .unwrap();
    assert!(off <= 6, "{what}: got {got:?}, expected about {want:?}");
}

const YELLOW: [u8; 3] = [0xfd, 0xe7, 0x25];
const PURPLE: [u8; 3] = [0x44, 0x01, 0x54];

fn tokens(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{i}")).collect()
}

/// A matrix with its max at `hi` and min at `lo`, everything else in between.
fn matrix(n: usize, hi: (usize, usize), lo: (usize, usize)) -> Vec<Vec<f32>> {
    let mut m = vec![vec![0.5f32; n]; n];
    m[hi.0][hi.1] = 2.0;
    m[lo.0][lo.1] = -1.0;
    m
}

fn centre(r: Rect) -> (i32, i32) {
    ((r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2)
}

#[test]
fn single_heatmap_extremes_are_viridis_ends() {
    let toks = tokens(7);
    let m = matrix(7, (1, 5), (6, 0));
    let img = decode(&render_heatmap(&m, &toks, "t").unwrap());
    let labels: Vec<String> = toks.iter().map(|t| short_label(t)).collect();
    let layout = heatmap_layout(&labels, "t", (-1.0, 2.0));
    let (x, y) = centre(layout.cell(1, 5));
    assert_close(pixel(&img, x, y), YELLOW, "max cell");
    let (x, y) = centre(layout.cell(6, 0));
    assert_close(pixel(&img, x, y), PURPLE, "min cell");
    // The whole cell is one colour, edge to edge (no grid lines, no anti-aliasing).
    let r = layout.cell(1, 5);
    assert_close(pixel(&img, r.x0, r.y0), YELLOW, "max cell corner");
    assert_close(pixel(&img, r.x1 - 1, r.y1 - 1), YELLOW, "max cell corner");
    // Colour bar: yellow on top, purple at the bottom.
    let cb = layout.colorbar.expect("single heatmap has a colour bar");
    assert_close(
        pixel(&img, (cb.x0 + cb.x1) / 2, cb.y0),
        YELLOW,
        "colour bar top",
    );
    assert_close(
        pixel(&img, (cb.x0 + cb.x1) / 2, cb.y1 - 1),
        PURPLE,
        "colour bar bottom",
    );
}

#[test]
fn grid_panels_use_their_own_scale() {
    let toks = tokens(6);
    let panels = vec![
        matrix(6, (0, 0), (5, 5)),
        matrix(6, (2, 3), (3, 2)),
        matrix(6, (5, 1), (0, 4)),
        matrix(6, (4, 4), (1, 1)),
        // Second row, and a much larger scale that must not affect the others.
        matrix(6, (3, 0), (0, 3))
            .into_iter()
            .map(|r| r.into_iter().map(|v| v * 1000.0).collect())
            .collect(),
    ];
    let img = decode(&render_grid(&panels, &toks, GridKind::Heads).unwrap());
    assert_eq!((img.0, img.1), (2000, 800));
    let labels: Vec<String> = toks.iter().map(|t| short_label(t)).collect();
    let base = grid_layout(&labels);
    let extremes = [
        ((0, 0), (5, 5)),
        ((2, 3), (3, 2)),
        ((5, 1), (0, 4)),
        ((4, 4), (1, 1)),
        ((3, 0), (0, 3)),
    ];
    for (p, (hi, lo)) in extremes.into_iter().enumerate() {
        let (dx, dy) = grid_offset(p);
        let layout = base.clone().offset(dx, dy);
        let (x, y) = centre(layout.cell(hi.0, hi.1));
        assert_close(pixel(&img, x, y), YELLOW, &format!("panel {p} max"));
        let (x, y) = centre(layout.cell(lo.0, lo.1));
        assert_close(pixel(&img, x, y), PURPLE, &format!("panel {p} min"));
    }
    // Unused panels (5..8) stay blank white.
    for p in 5..8 {
        let (dx, dy) = grid_offset(p);
        let (w, h) = GRID_PANEL_SIZE;
        for (x, y) in [
            (dx + 10, dy + 10),
            (dx + w as i32 / 2, dy + h as i32 / 2),
            (dx + w as i32 - 1, dy + h as i32 - 1),
        ] {
            assert_eq!(
                pixel(&img, x, y),
                [255, 255, 255],
                "panel {p} at ({x}, {y})"
            );
        }
    }
}

#[test]
fn constant_matrix_is_mid_scale() {
    let m = vec![vec![0.25f32; 3]; 3];
    let toks = tokens(3);
    let img = decode(&render_heatmap(&m, &toks, "flat").unwrap());
    let labels: Vec<String> = toks.iter().map(|t| short_label(t)).collect();
    let layout = heatmap_layout(&labels, "flat", display_range(0.25, 0.25));
    let (x, y) = centre(layout.cell(1, 1));
    // viridis(0.5) is #21918c.
    assert_close(pixel(&img, x, y), [0x21, 0x91, 0x8c], "constant cell");
}

#[test]
fn layout_keeps_labels_inside_the_image() {
    for n in [1, 2, 20, 200, MAX_TOKENS] {
        let labels: Vec<String> = (0..n)
            .map(|i| short_label(&format!("a-rather-long-token-{i}")))
            .collect();
        let l = heatmap_layout(&labels, "title", (0.0, 1.0));
        assert!(l.axes.x0 > 0 && l.axes.y0 > 0, "{n}: {:?}", l.axes);
        assert!(l.colorbar.unwrap().x1 < HEATMAP_SIZE.0 as i32, "{n}");
        assert!(
            l.axes.width() > 500 && l.axes.height() > 500,
            "{n}: {:?}",
            l.axes
        );
        assert!(
            l.y_labels_left > 0.0 && l.x_labels_bottom < HEATMAP_SIZE.1 as f32 - 20.0,
            "{n}"
        );
        let g = grid_layout(&labels);
        assert!(
            g.axes.width() > 200 && g.axes.height() > 150,
            "{n}: {:?}",
            g.axes
        );
        assert!(
            g.axes.x1 <= GRID_PANEL_SIZE.0 as i32 && g.x_labels_bottom <= GRID_PANEL_SIZE.1 as f32
        );
    }
}
