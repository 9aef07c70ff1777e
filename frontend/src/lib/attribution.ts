// Direct logit attribution (/inference's `attribution`): how much the embeddings, each layer's
// attention and MLP, its heads, and the rest (biases, the final norm's centring) add to one token's
// logit at one position; the sum that checks the parts, and the CSV of them.
import type { Attribution } from '../api/types';
import { csvField } from './analysis';
import { fileNamePart, fileStamp } from './download';

/** What a lens cell's Attribute asks about: its top-1 token's logit at its position (the column). */
export interface AttributionTarget {
  tokenId: number;
  token: string;
  position: number;
  /** The lens row the token was read from, to say where it came from. */
  rowName: string;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** embed + Σ attn + Σ mlp + rest: the logit again, up to float rounding. */
export function attributionTotal(a: Attribution): number {
  return a.embed + sum(a.attn) + sum(a.mlp) + a.rest;
}

/** The sum check as the panel says it: "embed + Σattn + Σmlp + rest = X vs logit Y". */
export function sumCheckText(a: Attribution, digits = 4): string {
  return `embed + Σattn + Σmlp + rest = ${attributionTotal(a).toFixed(digits)} vs logit ${a.logit.toFixed(digits)}`;
}

/** Whether the parts add up to the logit, within `tol` of its size. */
export function sumChecks(a: Attribution, tol = 1e-3): boolean {
  return Math.abs(attributionTotal(a) - a.logit) <= tol * Math.max(1, Math.abs(a.logit));
}

/** A layer's attention part that no head accounts for: its output bias (attn[l] − Σ_h heads[l][h]). */
export function attnBias(a: Attribution, layer: number): number {
  return a.attn[layer] - sum(a.heads[layer] ?? []);
}

/** The largest |value| of the heads (1 when all are 0): the end of their symmetric colour scale. */
export function headsMax(a: Attribution): number {
  let m = 0;
  for (const row of a.heads) for (const v of row) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m || 1;
}

export const ATTRIBUTION_CSV_HEADER = 'component,layer,head,value';

/**
 * One line per part: `embed`, `attn` and `mlp` per layer, `head` per layer and head, `rest` and each
 * of its parts (`rest:<name>`), and the `logit` they add up to. Lines end with \n.
 */
export function attributionCsv(a: Attribution): string {
  const lines = [ATTRIBUTION_CSV_HEADER, `embed,,,${a.embed}`];
  a.attn.forEach((v, l) => lines.push(`attn,${l},,${v}`));
  a.mlp.forEach((v, l) => lines.push(`mlp,${l},,${v}`));
  a.heads.forEach((row, l) => row.forEach((v, h) => lines.push(`head,${l},${h},${v}`)));
  lines.push(`rest,,,${a.rest}`);
  for (const [name, v] of Object.entries(a.rest_parts)) lines.push(`${csvField(`rest:${name}`)},,,${v}`);
  lines.push(`logit,,,${a.logit}`);
  return `${lines.join('\n')}\n`;
}

/** `attribution_<model>_pos<position>_<YYYYMMDD_HHMMSS>.<ext>`, safe as a file name. */
export function attributionFileName(model: string, position: number, when: Date, ext: 'csv' | 'png'): string {
  return `attribution_${fileNamePart(model)}_pos${position}_${fileStamp(when)}.${ext}`;
}
