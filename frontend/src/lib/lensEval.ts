// Lens quality: the measures of POST /eval_lens (and of `logitlens eval-lens --json`, the same
// without what the evaluation was made of), checked when they come from a file, named for the
// charts, and written out as CSV.
import type { EvalReport, Evaluation, Lens, LensMetrics } from '../api/types';
import { csvField } from './analysis';
import { fileNamePart, fileStamp } from './download';

/** An evaluation on screen: the server's report, or a file's (the CLI's has no model or documents). */
export type EvalData = Evaluation & Partial<Pick<EvalReport, 'model_name' | 'tuned_lens' | 'jacobian_lens' | 'documents' | 'max_tokens'>>;

export type MetricKey = keyof LensMetrics;

export interface EvalMetricSpec {
  key: MetricKey;
  title: string;
  /** "nats", or "" for a fraction */
  unit: string;
  /** A fraction, shown as a percentage on a 0..1 axis. */
  percent?: boolean;
  /** A log scale can be offered (values spanning decades, the output row at 0). */
  log?: boolean;
  /** What it measures and which way is better. */
  help: string;
}

export const EVAL_METRICS: EvalMetricSpec[] = [
  {
    key: 'kl',
    title: 'KL to the output',
    unit: 'nats',
    log: true,
    help: 'KL(p_output ‖ p_row), averaged over positions: how far each row’s prediction is from the model’s own (0 at the output). Lower is better.',
  },
  { key: 'ce', title: 'Cross-entropy', unit: 'nats', help: 'Cross-entropy of the actual next token under each row’s prediction. Lower is better.' },
  { key: 'entropy', title: 'Entropy', unit: 'nats', help: 'Entropy of each row’s prediction: how spread out it is.' },
  {
    key: 'top1_agree',
    title: 'Top-1 agreement',
    unit: '',
    percent: true,
    help: 'Fraction of positions where the row’s top-1 token is the output’s. Higher is better.',
  },
];

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const METRIC_KEYS: MetricKey[] = ['kl', 'ce', 'entropy', 'top1_agree'];

/**
 * One lens's measures: four lists of `rows` numbers. A value the evaluation could not compute is
 * written `null` by the server's JSON (NaN has no JSON form): it becomes NaN, a gap in the line.
 */
function checkMetrics(v: unknown, name: string, rows: number): ParseResult<LensMetrics> {
  if (!isObject(v)) return { ok: false, error: `“${name}” is missing or not an object of measures` };
  const out: Partial<LensMetrics> = {};
  for (const key of METRIC_KEYS) {
    const list = v[key];
    if (!Array.isArray(list)) return { ok: false, error: `“${name}.${key}” is missing or not a list` };
    if (list.length !== rows) return { ok: false, error: `“${name}.${key}” has ${list.length} value${list.length === 1 ? '' : 's'}, but there are ${rows} rows` };
    const values: number[] = [];
    for (let i = 0; i < list.length; i++) {
      const x = list[i];
      if (x === null) values.push(NaN);
      else if (typeof x === 'number' && Number.isFinite(x)) values.push(x);
      else return { ok: false, error: `“${name}.${key}[${i}]” is not a number` };
    }
    out[key] = values;
  }
  return { ok: true, value: out as LensMetrics };
}

/**
 * Checks that `v` is an evaluation: `layers` (row names), `tokens`, `logit` and optionally `tuned`
 * and `jacobian` measures with a value per row, and, when present, the report's `model_name`,
 * `tuned_lens`, `jacobian_lens`, `documents` and `max_tokens`. Fields it does not know are left out.
 */
export function checkEvaluation(v: unknown): ParseResult<EvalData> {
  if (!isObject(v)) return { ok: false, error: 'it is not a JSON object' };
  const layers = v.layers;
  if (!Array.isArray(layers) || layers.length === 0 || !layers.every((l) => typeof l === 'string')) {
    return { ok: false, error: '“layers” is missing or not a list of row names' };
  }
  if (typeof v.tokens !== 'number' || !Number.isInteger(v.tokens) || v.tokens < 0) return { ok: false, error: '“tokens” is missing or not a count' };
  const logit = checkMetrics(v.logit, 'logit', layers.length);
  if (!logit.ok) return logit;
  const out: EvalData = { layers: layers as string[], tokens: v.tokens, logit: logit.value };
  for (const lens of ['tuned', 'jacobian'] as const) {
    if (v[lens] === undefined || v[lens] === null) continue;
    const m = checkMetrics(v[lens], lens, layers.length);
    if (!m.ok) return m;
    out[lens] = m.value;
  }
  for (const key of ['model_name', 'tuned_lens', 'jacobian_lens'] as const) {
    const x = v[key];
    if (x === undefined || x === null) continue;
    if (typeof x !== 'string') return { ok: false, error: `“${key}” is not a string` };
    out[key] = x;
  }
  for (const key of ['documents', 'max_tokens'] as const) {
    const x = v[key];
    if (x === undefined || x === null) continue;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) return { ok: false, error: `“${key}” is not a count` };
    out[key] = x;
  }
  return { ok: true, value: out };
}

/** A file's text as an evaluation, or why it is not one (in words, to show as it is). */
export function parseEvalFile(text: string, fileName: string): ParseResult<EvalData> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `${fileName} is not JSON (${err instanceof Error ? err.message : String(err)}). Open the output of “logitlens eval-lens --json”, or a lens evaluation of the server.` };
  }
  const r = checkEvaluation(v);
  if (r.ok) return r;
  return { ok: false, error: `${fileName} is not a lens evaluation: ${r.error}. Open the output of “logitlens eval-lens --json”, or a lens evaluation of the server.` };
}

export interface EvalLine {
  lens: Lens;
  metrics: LensMetrics;
}

/** The lines of each chart: the logit lens, then the tuned and the Jacobian lens when the evaluation has them. */
export function evalLines(e: EvalData): EvalLine[] {
  const lines: EvalLine[] = [{ lens: 'logit', metrics: e.logit }];
  if (e.tuned) lines.push({ lens: 'tuned', metrics: e.tuned });
  if (e.jacobian) lines.push({ lens: 'jacobian', metrics: e.jacobian });
  return lines;
}

export const EVAL_CSV_HEADER = 'lens,row,name,kl,ce,entropy,top1_agree';

/** One line per lens and row (nats; top1_agree a fraction); an empty field where there is no value. Lines end with \n. */
export function evalCsv(e: EvalData): string {
  const lines = [EVAL_CSV_HEADER];
  for (const { lens, metrics } of evalLines(e)) {
    e.layers.forEach((name, row) => {
      const values = METRIC_KEYS.map((k) => {
        const v = metrics[k][row];
        return Number.isFinite(v) ? String(v) : '';
      });
      lines.push([lens, String(row), csvField(name), ...values].join(','));
    });
  }
  return `${lines.join('\n')}\n`;
}

/** `lens_quality_<name>_<YYYYMMDD_HHMMSS>.<ext>`, safe as a file name. */
export function evalFileName(name: string, when: Date, ext: 'csv' | 'svg' | 'png'): string {
  return `lens_quality_${fileNamePart(name, 'evaluation')}_${fileStamp(when)}.${ext}`;
}

/** The documents of a corpus as the server counts them: one per line, blank lines skipped. */
export function countDocuments(corpus: string): number {
  let n = 0;
  for (const line of corpus.split('\n')) if (line.trim() !== '') n++;
  return n;
}

/** The max tokens field: a whole number of at least 1 (the server says when it is over its limit). */
export function parseMaxTokens(text: string): ParseResult<number> {
  const t = text.trim();
  if (!/^\d+$/.test(t) || Number(t) < 1) return { ok: false, error: 'Max tokens must be a whole number of at least 1.' };
  return { ok: true, value: Number(t) };
}
