// Activation patching (POST /patch): the hooks a sweep can patch, the form's fields read (a list of
// positions; its metric tokens are read by track.ts's parseOneToken), and a sweep's result coloured, labelled and written out as CSV.
import type { PatchHook, PatchResponse, ResolvedPatchMetric } from '../api/types';
import { csvField } from './analysis';
import { fileNamePart, fileStamp } from './download';
import type { Result } from './interventions';
import { formatToken } from './tokens';

export interface HookSpec {
  value: PatchHook;
  label: string;
  help: string;
}

export const PATCH_HOOKS: HookSpec[] = [
  { value: 'resid_pre', label: 'Residual stream, before the layer', help: 'Everything the layer reads at that position: the whole state up to there.' },
  { value: 'resid_mid', label: 'Residual stream, after attention', help: 'The state between the layer’s attention and its MLP.' },
  { value: 'attn_out', label: 'Attention output', help: 'What the layer’s attention adds to the residual stream.' },
  { value: 'mlp_out', label: 'MLP output', help: 'What the layer’s MLP adds to the residual stream.' },
  { value: 'resid_post', label: 'Residual stream, after the layer', help: 'The state the layer hands on (the next layer’s input).' },
];

/** The positions list as typed: whole numbers separated by commas or spaces, negative from the end. */
export function parsePositions(text: string): Result<number[]> {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '');
  if (parts.length === 0) return { ok: false, error: 'Type the positions to patch (0, 3, -1), or choose all positions.' };
  const out: number[] = [];
  for (const p of parts) {
    if (!/^-?\d+$/.test(p)) return { ok: false, error: `“${p}” is not a position: positions are whole numbers, negative from the end (-1 is the last token).` };
    out.push(Number(p));
  }
  return { ok: true, value: out };
}

/** Why `positions` do not fit a text of `count` tokens, or null. */
export function positionsError(positions: number[], count: number): string | null {
  const bad = positions.find((p) => p >= count || p < -count);
  return bad === undefined ? null : `Position ${bad} is outside the text: it has ${count} tokens (0 to ${count - 1}, or -${count} to -1).`;
}

/** What the page says when the two texts do not pair up token by token. */
export function countMismatch(clean: number, corrupted: number): string | null {
  if (clean === corrupted) return null;
  return `The clean text is ${clean} tokens and the corrupted text ${corrupted}: patching needs the same number of tokens in both, so that each position has its counterpart.`;
}

/** The metric in words: "logit difference ␣Paris − ␣Madrid", "probability of ␣Paris". */
export function metricLabel(m: ResolvedPatchMetric): string {
  return m.type === 'logit_diff' ? `logit difference ${formatToken(m.correct_text)} − ${formatToken(m.wrong_text)}` : `probability of ${formatToken(m.token_text)}`;
}

export type PatchScale = 'normalized' | 'raw';

/**
 * The end of the colour scale, which runs from −max to max around 0: 1 for the normalized metric
 * (1 = the clean run's value restored, 0 = no effect), the largest |value| for the raw one.
 */
export function scaleMax(res: PatchResponse, scale: PatchScale): number {
  if (scale === 'normalized') return 1;
  let m = 0;
  for (const row of res.values) for (const v of row) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m || 1;
}

/** The cell whose patch restores most of the clean run (largest normalized value), or null. */
export function bestCell(normalized: (number | null)[][]): { layer: number; col: number } | null {
  let best: { layer: number; col: number } | null = null;
  let top = -Infinity;
  for (let layer = 0; layer < normalized.length; layer++) {
    for (let col = 0; col < normalized[layer].length; col++) {
      const v = normalized[layer][col];
      if (v !== null && Number.isFinite(v) && v > top) {
        top = v;
        best = { layer, col };
      }
    }
  }
  return best;
}

/** The tokens at column `j` of a sweep: clean and corrupted (the same token, in most columns). */
export function columnTokens(res: PatchResponse, j: number): { pos: number; clean: string; corrupted: string } {
  const pos = res.positions[j];
  return { pos, clean: res.tokens_clean[pos] ?? '', corrupted: res.tokens_corrupted[pos] ?? '' };
}

/** A column's label: the token, or "clean/corrupted" where the texts differ. */
export function columnLabel(res: PatchResponse, j: number): string {
  const { clean, corrupted } = columnTokens(res, j);
  return clean === corrupted ? formatToken(clean) : `${formatToken(clean)}/${formatToken(corrupted)}`;
}

export const PATCH_CSV_HEADER = 'layer,position,token_clean,token_corrupted,value,normalized';

/** A line per layer and patched position: the metric, and its normalized value (empty when there is none). Lines end with \n. */
export function patchCsv(res: PatchResponse): string {
  const lines = [PATCH_CSV_HEADER];
  res.values.forEach((row, layer) =>
    row.forEach((v, j) => {
      const { pos, clean, corrupted } = columnTokens(res, j);
      const n = res.normalized[layer]?.[j];
      lines.push([String(layer), String(pos), csvField(clean), csvField(corrupted), String(v), n === null || n === undefined ? '' : String(n)].join(','));
    }),
  );
  return `${lines.join('\n')}\n`;
}

/** `patching_<model>_<hook>_<YYYYMMDD_HHMMSS>.<ext>`, safe as a file name. */
export function patchFileName(model: string, hook: string, when: Date, ext: 'csv' | 'png'): string {
  return `patching_${fileNamePart(model)}_${fileNamePart(hook, 'hook')}_${fileStamp(when)}.${ext}`;
}
