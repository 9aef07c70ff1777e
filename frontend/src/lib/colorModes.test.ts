import { describe, expect, it } from 'vitest';
import { deltaColor, entropyColor, probColor } from './colors';
import {
  colorModeOptions,
  diffScaleMax,
  diffTokens,
  entropyScaleMax,
  formatDelta,
  formatRank,
  gridCells,
  resolveColorMode,
  trackedTokens,
  type GridData,
} from './colorModes';
import { diffGrid, entropyGrid, intervenedRows, lensRows, trackedGrid } from '../test/fixtures';

const full = (): GridData => ({ rows: intervenedRows(), baselineRows: lensRows(), diff: diffGrid(), tracked: trackedGrid(), entropy: entropyGrid() });

describe('colour modes', () => {
  it('offers top-1, each tracked token once, and entropy when the run has them', () => {
    expect(colorModeOptions({ rows: lensRows() })).toEqual([{ value: 'top1', label: 'Top-1 probability' }]);
    const opts = colorModeOptions(full());
    expect(opts.map((o) => o.value)).toEqual(['top1', 'tracked:7', 'tracked:301', 'entropy']);
    // The leading space of " Paris" is visible.
    expect(opts[1].label).toBe('Tracked: ␣Paris');
    // The same token tracked by string and by id is offered once.
    const dup = trackedGrid().map((row) => row.map((cell) => [...cell, { ...cell[0] }]));
    expect(trackedTokens(dup).map((t) => t.id)).toEqual([7, 301]);
  });

  it('falls back to top-1 when the chosen mode has no data', () => {
    expect(resolveColorMode('tracked:7', { rows: lensRows() })).toBe('top1');
    expect(resolveColorMode('tracked:8', full())).toBe('top1');
    expect(resolveColorMode('entropy', { rows: lensRows(), entropy: [] })).toBe('top1');
    expect(resolveColorMode('entropy', full())).toBe('entropy');
  });

  it('top-1 mode: the token and its probability, shaded by it', () => {
    const { cells, legend } = gridCells({ rows: lensRows() }, 'normal', 'top1');
    expect(legend).toEqual({ kind: 'prob', label: 'Top-1 probability' });
    expect(cells[0][0]).toMatchObject({ main: '␣the', sub: '0.50', value: 0.5, flip: false, bg: probColor(0.5) });
  });

  it('tracked mode: the tracked probability and rank, coloured by that probability', () => {
    const data = full();
    const { cells, legend } = gridCells(data, 'normal', 'tracked:7');
    expect(legend).toEqual({ kind: 'prob', label: 'p(␣Paris)' });
    const t = data.tracked![1][2][0];
    expect(cells[1][2]).toMatchObject({ main: t.prob.toFixed(2), sub: formatRank(t.rank), value: t.prob, rank: t.rank, bg: probColor(t.prob) });
    expect(cells[1][2].label).toBe(`Layer 0, position 2: ␣Paris ${t.prob.toFixed(2)}, rank ${t.rank + 1}`);
    // The colour follows the tracked token, not the top-1.
    expect(cells[0][0].bg).not.toEqual(cells[2][3].bg);
    expect(cells[0][0].bg).toEqual(probColor(data.tracked![0][0][0].prob));
    const other = gridCells(data, 'normal', 'tracked:301').cells;
    expect(other[1][2]).toMatchObject({ main: '0.01', sub: '#41', value: 0.01 });
  });

  it('entropy mode: coloured on 0..the grid maximum, value in nats', () => {
    const data = full();
    expect(entropyScaleMax(data.entropy)).toBe(5);
    expect(entropyScaleMax([[6.13]])).toBe(6.5);
    expect(entropyScaleMax(null)).toBe(1);
    const { cells, legend } = gridCells(data, 'normal', 'entropy');
    expect(legend).toEqual({ kind: 'entropy', max: 5 });
    expect(cells[0][0]).toMatchObject({ main: '␣the', sub: 'H 5.00', value: 5, bg: entropyColor(5, 5) });
    expect(cells[2][3]).toMatchObject({ sub: 'H 1.50', bg: entropyColor(1.5, 5) });
    expect(cells[2][3].label).toContain('entropy 1.50 nats');
  });

  it('diff view: coloured by Δ of the baseline top-1, flips marked, the new top-1 shown', () => {
    const data = full();
    expect(diffScaleMax(data.diff)).toBe(0.5);
    const { cells, legend } = gridCells(data, 'diff', 'tracked:7');
    expect(legend).toEqual({ kind: 'diff', max: 0.5 });
    const d = data.diff![2][0];
    expect(cells[2][0]).toMatchObject({ value: d.delta_prob, flip: false, bg: deltaColor(d.delta_prob, 0.5), sub: formatDelta(d.delta_prob) });
    expect(cells[1][1]).toMatchObject({ flip: true, main: '␣dog', sub: '⇄ −0.10' });
    expect(cells[1][1].label).toContain('top-1 changed to ␣dog');
    expect(cells[0][3]).toMatchObject({ sub: '+0.02', flip: false });
    expect(cells[0][0]).toMatchObject({ sub: '0.00', value: 0 });
    expect(diffTokens(data, 1, 1)).toEqual({ baseline: '\t', now: ' dog' });
  });

  it('diff view needs a diff: without one the grid stays normal', () => {
    const { legend } = gridCells({ rows: lensRows() }, 'diff', 'top1');
    expect(legend.kind).toBe('prob');
  });

  it('formats Δ with a real minus sign and ranks from #1', () => {
    expect(formatDelta(-0.034)).toBe('−0.03');
    expect(formatDelta(0.2)).toBe('+0.20');
    expect(formatDelta(-0.004)).toBe('−0.004');
    expect(formatDelta(0.0001)).toBe('0.00');
    expect(formatRank(0)).toBe('#1');
    expect(formatRank(11)).toBe('#12');
  });
});
