import { describe, expect, it } from 'vitest';
import type { LensRow } from '../api/types';
import type { AttentionTensor } from './attention';
import { attentionBytes, boundHistory, BYTES_PER_PREDICTION, promptLine, rowsBytes, runFacts, type HistoryEntry, type HistoryRun } from './runHistory';

function rows(R: number, T: number): LensRow[] {
  return Array.from({ length: R }, (_, r) => ({
    layer_index: r,
    layer_name: `Layer ${r}`,
    predictions: Array.from({ length: T }, () => Array.from({ length: 5 }, (_, k) => ({ token: 't', id: k, prob: 0.2 }))),
  }));
}

/** A head-mean tensor of `layers` × T×T Float32. */
function tensor(layers: number, T: number): AttentionTensor {
  return { layers, heads: 1, T, data: Array.from({ length: layers }, () => [new Float32Array(T * T)]), layerIds: Array.from({ length: layers }, (_, i) => i), reduce: 'head_mean' };
}

function entry(id: number, view: HistoryRun): HistoryEntry<HistoryRun> {
  return { id, at: id * 1000, view, attentionDropped: false };
}

const LIMITS = { maxRuns: 3, attentionBytes: 1000, rowsBytes: 10 * 5 * 3 * BYTES_PER_PREDICTION };

describe('the history’s sizes', () => {
  it('counts attention exactly and rows by the measured bytes per prediction', () => {
    expect(attentionBytes(tensor(2, 5))).toBe(2 * 25 * 4);
    expect(attentionBytes(null)).toBe(0);
    // Rows and the baseline's, a diff cell and a tracked token each count as one prediction.
    const v: HistoryRun = { rows: rows(2, 3), baselineRows: rows(2, 3), tensor: null, diff: [[{}, {}, {}]], tracked: [[[{}, {}]]] };
    expect(rowsBytes(v)).toBe((30 + 30 + 3 + 2) * BYTES_PER_PREDICTION);
  });
});

describe('boundHistory', () => {
  it('keeps at most maxRuns, the newest', () => {
    const list = [4, 3, 2, 1].map((id) => entry(id, { rows: rows(1, 1), tensor: null }));
    expect(boundHistory(list, LIMITS).map((e) => e.id)).toEqual([4, 3, 2]);
  });

  it('returns the same list when it is within bounds', () => {
    const list = [2, 1].map((id) => entry(id, { rows: rows(1, 1), tensor: null }));
    expect(boundHistory(list, LIMITS)).toBe(list);
  });

  it('lets go of the older runs’ attention beyond its budget, marked, and keeps their rows', () => {
    // 2 layers of 10×10 floats = 800 bytes: one run's fits the 1,000 of the budget, two do not.
    const list = [3, 2, 1].map((id) => entry(id, { rows: rows(1, 1), tensor: tensor(2, 10) }));
    const out = boundHistory(list, LIMITS);
    expect(out.map((e) => [e.id, e.attentionDropped, e.view.tensor !== null])).toEqual([
      [3, false, true],
      [2, true, false],
      [1, true, false],
    ]);
    // The entry on screen (the newest) is the same object; the input is not changed.
    expect(out[0]).toBe(list[0]);
    expect(list[1].view.tensor).not.toBeNull();
    // A smaller one further back still fits what is left.
    const mixed = [entry(3, { rows: rows(1, 1), tensor: tensor(2, 10) }), entry(2, { rows: rows(1, 1), tensor: tensor(2, 10) }), entry(1, { rows: rows(1, 1), tensor: tensor(1, 5) })];
    expect(boundHistory(mixed, LIMITS).map((e) => e.attentionDropped)).toEqual([false, true, false]);
  });

  it('drops the older runs whose rows go beyond the rows budget, but always keeps the newest', () => {
    // 10 positions × 5 predictions × 1 row = 50 predictions each; the budget holds 150.
    const list = [4, 3, 2, 1].map((id) => entry(id, { rows: rows(1, 10), tensor: null }));
    expect(boundHistory(list, { ...LIMITS, maxRuns: 10 }).map((e) => e.id)).toEqual([4, 3, 2]);
    const huge = [entry(2, { rows: rows(10, 10), tensor: null }), entry(1, { rows: rows(1, 1), tensor: null })];
    expect(boundHistory(huge, LIMITS).map((e) => e.id)).toEqual([2]);
  });
});

describe('promptLine', () => {
  it('puts the prompt on one line and cuts it with an ellipsis', () => {
    expect(promptLine('The capital\nof  France is')).toBe('The capital of France is');
    expect(promptLine('abcdefghij', 5)).toBe('abcd…');
    expect(promptLine('abcde', 5)).toBe('abcde');
    // No space left before the ellipsis.
    expect(promptLine('abc defgh', 5)).toBe('abc…');
    expect(promptLine('  \n ')).toBe('(empty prompt)');
    // Characters, not UTF-16 halves.
    expect(promptLine('😀😀😀', 2)).toBe('😀…');
  });
});

describe('runFacts', () => {
  it('says model, lens type, lens, tokens, interventions and what a generation wrote', () => {
    const request = { text: 'x', lens_type: 'block_output' as const, apply_chat_template: false, interventions: { layer_1_output: [{ type: 'zero' as const, token_index: -1 }] } };
    expect(runFacts({ request, rows: rows(2, 7), modelName: '/models/tiny/llama' })).toEqual(['llama', 'Block Output (standard)', 'logit lens', '7 tokens', '1 intervention']);
    expect(runFacts({ request: { ...request, lens: 'tuned', interventions: {}, apply_chat_template: true }, rows: rows(1, 1), modelName: 'SmolLM2.gguf', lensPath: '/lenses/smol', generation: { ids: [1, 2] } })).toEqual([
      'SmolLM2',
      'Block Output (standard)',
      'tuned lens (smol)',
      '1 token',
      '0 interventions',
      'chat template',
      '2 written',
    ]);
  });
});
