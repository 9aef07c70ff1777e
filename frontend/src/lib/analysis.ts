// The activation analysis of a run: which matrices there are, how they are named and scaled, and
// their CSV export.
import type { ActivationAnalysis } from '../api/types';
import { fileNamePart, fileStamp } from './download';

export type MetricKey = keyof ActivationAnalysis;

export interface MetricSpec {
  key: MetricKey;
  title: string;
  /** `row`: one row per lens row; `layer`: one per transformer layer */
  axis: 'row' | 'layer';
  /** norms are scaled to their own range; cosines to -1..1 */
  kind: 'norm' | 'cos';
  help: string;
}

export const METRICS: MetricSpec[] = [
  { key: 'resid_norm', title: 'Residual norm', axis: 'row', kind: 'norm', help: 'L2 norm of the residual stream state each lens row shows' },
  { key: 'cos_prev', title: 'Cosine to previous row', axis: 'row', kind: 'cos', help: 'Cosine similarity of each row’s state to the row above (none for the first row)' },
  { key: 'cos_final', title: 'Cosine to final row', axis: 'row', kind: 'cos', help: 'Cosine similarity of each row’s state to the final row’s' },
  { key: 'attn_out_norm', title: 'Attention output norm', axis: 'layer', kind: 'norm', help: 'L2 norm of what attention adds at each layer' },
  { key: 'mlp_out_norm', title: 'MLP output norm', axis: 'layer', kind: 'norm', help: 'L2 norm of what the MLP adds at each layer' },
];

/** The names down the side of a metric's matrix: lens row names, or "Layer i". */
export function metricRowNames(spec: MetricSpec, rows: number, lensRowNames: string[]): string[] {
  return Array.from({ length: rows }, (_, i) => (spec.axis === 'row' ? lensRowNames[i] ?? `Row ${i}` : `Layer ${i}`));
}

/** Smallest and largest finite value (0..1 when there is none). */
export function metricRange(m: (number | null)[][]): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const row of m) {
    for (const v of row) {
      if (v === null || !Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return min <= max ? { min, max } : { min: 0, max: 1 };
}

/** A CSV field (RFC 4180): quoted when it holds a comma, quote, line break or edge spaces. */
export function csvField(v: string): string {
  return /[",\r\n]|^\s|\s$/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export const CSV_HEADER = 'metric,row_or_layer,name,position,token,value';

/**
 * One long table of every metric: `row_or_layer` is the lens row index (resid_norm, cos_prev,
 * cos_final) or the layer index (attn_out_norm, mlp_out_norm); `token` is the raw input token;
 * `value` is empty where there is none (cos_prev of the first row). Lines end with \n.
 */
export function analysisCsv(a: ActivationAnalysis, lensRowNames: string[], tokens: string[] | null): string {
  const lines = [CSV_HEADER];
  for (const spec of METRICS) {
    const m = a[spec.key] ?? [];
    const names = metricRowNames(spec, m.length, lensRowNames);
    m.forEach((row, i) => {
      row.forEach((v, pos) => {
        const value = v === null || v === undefined ? '' : String(v);
        lines.push([spec.key, String(i), csvField(names[i]), String(pos), csvField(tokens?.[pos] ?? ''), value].join(','));
      });
    });
  }
  return `${lines.join('\n')}\n`;
}

/** `activation_analysis_<model>_<YYYYMMDD_HHMMSS>.csv`, safe as a file name. */
export function analysisFileName(modelShortName: string, when: Date): string {
  return `activation_analysis_${fileNamePart(modelShortName)}_${fileStamp(when)}.csv`;
}
