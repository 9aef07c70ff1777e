import { describe, expect, it } from 'vitest';
import type { LensRow } from '../api/types';
import { alignRows, compareRuns, nameList, rowKey, type CompareSide } from './runCompare';

/** Rows named `names`, T positions; the top-1 of (r, c) is `tops(r, c)`, then four fillers. */
function rows(names: string[], T: number, tops: (r: number, c: number) => { token: string; id: number; prob: number }): LensRow[] {
  return names.map((layer_name, r) => ({
    layer_index: r,
    layer_name,
    predictions: Array.from({ length: T }, (_, c) => [tops(r, c), ...[1, 2, 3, 4].map((k) => ({ token: `f${k}`, id: 1000 + k, prob: 0.01 }))]),
  }));
}

const NAMES = ['Embeddings', 'Layer 0', 'Layer 1', 'Final Output'];
const side = (r: LensRow[], tokens: string[] | null, modelName = 'm'): CompareSide => ({ rows: r, tokens, modelName });

describe('rowKey', () => {
  it('pairs the states two lens types share, whatever they call them', () => {
    expect(rowKey('Layer 3')).toBe(rowKey('L3 Block Out'));
    expect(rowKey('Layer 3')).not.toBe(rowKey('L3 Post-Attn'));
    expect(rowKey('L3 Post-Attn')).toBe('attn:3');
    expect(rowKey('Embeddings')).toBe('resid:0');
    // "Final Output" is its own row even where it reads the stream the last block wrote.
    expect(rowKey('Final Output')).not.toBe(rowKey('L2 Block Out'));
    expect(rowKey('something else')).toBe('name:something else');
  });
});

describe('alignRows', () => {
  it('keeps A’s order and places B’s own rows after the row B has before them', () => {
    const a = rows(NAMES, 1, () => ({ token: 'x', id: 1, prob: 0.5 }));
    const b = rows(['Embeddings', 'Layer 0', 'Layer 1', 'Layer 2', 'Layer 3', 'Final Output'], 1, () => ({ token: 'x', id: 1, prob: 0.5 }));
    expect(alignRows(a, b)).toEqual([
      { name: 'Embeddings', a: 0, b: 0 },
      { name: 'Layer 0', a: 1, b: 1 },
      { name: 'Layer 1', a: 2, b: 2 },
      { name: 'Layer 2', a: null, b: 3 },
      { name: 'Layer 3', a: null, b: 4 },
      { name: 'Final Output', a: 3, b: 5 },
    ]);
  });

  it('block output against combined: the block outputs pair up under both names, the post-attention rows are B’s alone', () => {
    const a = rows(['Embeddings', 'Layer 0', 'Final Output'], 1, () => ({ token: 'x', id: 1, prob: 0.5 }));
    const b = rows(['Embeddings', 'L0 Post-Attn', 'L0 Block Out', 'L1 Post-Attn', 'L1 Block Out', 'Final Output'], 1, () => ({ token: 'x', id: 1, prob: 0.5 }));
    expect(alignRows(a, b)).toEqual([
      { name: 'Embeddings', a: 0, b: 0 },
      { name: 'L0 Post-Attn', a: null, b: 1 },
      { name: 'Layer 0 / L0 Block Out', a: 1, b: 2 },
      { name: 'L1 Post-Attn', a: null, b: 3 },
      { name: 'L1 Block Out', a: null, b: 4 },
      { name: 'Final Output', a: 2, b: 5 },
    ]);
  });
});

describe('compareRuns', () => {
  it('two runs of one shape: both top-1s, Δ = p_B − p_A, same-token cells, the scale fitted, nothing to say', () => {
    const a = rows(NAMES, 3, (r, c) => ({ token: `a${r}${c}`, id: 10 * r + c, prob: 0.5 }));
    // B: the same top-1 ids except at (3, 2); its probability 0.1 r higher.
    const b = rows(NAMES, 3, (r, c) => (r === 3 && c === 2 ? { token: 'z', id: 999, prob: 0.9 } : { token: `a${r}${c}`, id: 10 * r + c, prob: 0.5 + 0.1 * r - 0.05 * c }));
    const cmp = compareRuns(side(a, ['<s>', 'The', ' cat']), side(b, ['<s>', 'The', ' cat']));
    expect(cmp.notes).toEqual([]);
    expect(cmp.rows.map((r) => r.name)).toEqual(NAMES);
    expect(cmp.columns.map((c) => c.sameToken)).toEqual([true, true, true]);
    expect(cmp.compared).toBe(12);
    expect(cmp.sameTop1).toBe(11);
    const c = cmp.cells[2][1];
    expect(c.kind).toBe('both');
    if (c.kind !== 'both') return;
    expect(c.a.token).toBe('a21');
    expect(c.b.token).toBe('a21');
    expect(c.delta).toBeCloseTo(0.15);
    expect(c.same).toBe(true);
    expect(c.aInB).toEqual({ prob: c.b.prob, rank: 0 });
    const flip = cmp.cells[3][2];
    if (flip.kind !== 'both') throw new Error('both');
    expect(flip.same).toBe(false);
    expect(flip.delta).toBeCloseTo(0.4);
    // A's top-1 is not among B's five there.
    expect(flip.aInB).toBeNull();
    expect(cmp.scaleMax).toBe(0.5);
    // |Δ| by row: 0 .05 .1 | .1 .05 0 | .2 .15 .1 | .3 .25 .4
    expect(cmp.meanAbsDelta).toBeCloseTo(1.7 / 12, 10);
  });

  it('finds a top-1 lower in the other run’s list: its probability and rank there', () => {
    const a = rows(['Final Output'], 1, () => ({ token: 'x', id: 7, prob: 0.6 }));
    const b: LensRow[] = [{ layer_index: 0, layer_name: 'Final Output', predictions: [[{ token: 'y', id: 8, prob: 0.5 }, { token: 'x', id: 7, prob: 0.2 }]] }];
    const cell = compareRuns(side(a, ['<s>']), side(b, ['<s>'])).cells[0][0];
    if (cell.kind !== 'both') throw new Error('both');
    expect(cell.aInB).toEqual({ prob: 0.2, rank: 1 });
    expect(cell.bInA).toBeNull();
    expect(cell.delta).toBeCloseTo(-0.1);
  });

  it('different token counts: aligned from the start, the longer run’s extra positions its alone, said in words', () => {
    const a = rows(NAMES, 5, () => ({ token: 'x', id: 1, prob: 0.5 }));
    const b = rows(NAMES, 3, () => ({ token: 'x', id: 1, prob: 0.5 }));
    const cmp = compareRuns(side(a, ['<s>', 'The', ' cat', ' sat', '.']), side(b, ['<s>', 'The', ' dog']));
    expect(cmp.columns.map((c) => [c.pos, c.inA, c.inB])).toEqual([
      [0, true, true],
      [1, true, true],
      [2, true, true],
      [3, true, false],
      [4, true, false],
    ]);
    expect(cmp.columns[3].b).toBeUndefined();
    expect(cmp.cells[0].map((c) => c.kind)).toEqual(['both', 'both', 'both', 'a-only', 'a-only']);
    expect(cmp.compared).toBe(12);
    expect(cmp.notes).toEqual([
      "A has 5 positions, B 3: positions 3–4 are only in A and shown as A's alone, not compared (B has nothing there).",
      'The inputs differ: 1 shared position of 3 holds different tokens (first at position 2, “␣cat” in A, “␣dog” in B); their columns compare what each run predicts after its own token, aligned by position from the start.',
    ]);
  });

  it('different models and layer counts: rows only in one run are its alone, tops matched by text, said in words', () => {
    const a = rows(NAMES, 2, () => ({ token: ' Paris', id: 5, prob: 0.5 }));
    const b = rows(['Embeddings', 'Layer 0', 'Layer 1', 'Layer 2', 'Layer 3', 'Layer 4', 'Final Output'], 2, () => ({ token: ' Paris', id: 77, prob: 0.25 }));
    const cmp = compareRuns(side(a, ['<s>', 'The'], '/m/tiny/llama'), side(b, ['<s>', 'The'], 'SmolLM2-135M.gguf'));
    expect(cmp.matchBy).toBe('text');
    // Another vocabulary: id 5 and id 77 are both " Paris".
    expect(cmp.sameTop1).toBe(cmp.compared);
    expect(cmp.compared).toBe(8);
    expect(cmp.cells.map((row) => row[0].kind)).toEqual(['both', 'both', 'both', 'b-only', 'b-only', 'b-only', 'both']);
    expect(cmp.notes).toEqual([
      'A and B ran on different models (llama and SmolLM2-135M): rows are matched by layer number, not by depth, and top-1 tokens by their text, since the two vocabularies number tokens differently.',
      "3 rows only in B (Layer 2, Layer 3 and Layer 4), shown as B's alone, not compared.",
    ]);
  });

  it('a row only in A at a position only in B is in neither; unknown tokens are said, not assumed equal', () => {
    const a = rows(['Embeddings', 'Layer 0'], 1, () => ({ token: 'x', id: 1, prob: 0.5 }));
    const b = rows(['Embeddings'], 2, () => ({ token: 'x', id: 1, prob: 0.5 }));
    const cmp = compareRuns(side(a, null), side(b, ['<s>', 'x']));
    expect(cmp.cells.map((r) => r.map((c) => c.kind))).toEqual([
      ['both', 'b-only'],
      ['a-only', 'none'],
    ]);
    expect(cmp.columns[0].sameToken).toBe(false);
    expect(cmp.notes).toContain('A does not record its input tokens: whether the same token sits at each position cannot be checked.');
    expect(cmp.notes).toContain("1 row only in A (Layer 0), shown as A's alone, not compared.");
  });

  it('nothing in common: said', () => {
    const a = rows(['Layer 0'], 1, () => ({ token: 'x', id: 1, prob: 0.5 }));
    const b = rows(['L0 Post-Attn'], 1, () => ({ token: 'x', id: 1, prob: 0.5 }));
    const cmp = compareRuns(side(a, ['<s>']), side(b, ['<s>']));
    expect(cmp.compared).toBe(0);
    expect(cmp.meanAbsDelta).toBe(0);
    expect(cmp.notes[cmp.notes.length - 1]).toBe('No cell is in both runs: there is nothing to compare.');
  });
});

describe('nameList', () => {
  it('lists a few, counts the rest', () => {
    expect(nameList(['a'])).toBe('a');
    expect(nameList(['a', 'b'])).toBe('a and b');
    expect(nameList(['a', 'b', 'c', 'd'])).toBe('a, b, c and d');
    expect(nameList(['a', 'b', 'c', 'd', 'e'])).toBe('a, b, c and 2 more');
  });
});
