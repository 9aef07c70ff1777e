// Fitting a Jacobian lens (POST /fit_jlens): the form's fields read and checked (a corpus or a
// number of sampled documents, the prompts, sequence length, positions skipped and dimensions per
// backward pass), the request they make, and a kept checkpoint in words.
import type { FitJlensCheckpoint, FitJlensRequest, RunProgress } from '../api/types';
import { countDocuments } from './lensEval';
import { describeRunProgress, type RunProgressView } from './progress';

export type FitSource = 'corpus' | 'sample';

/** The form as typed. */
export interface FitFormValues {
  source: FitSource;
  corpus: string;
  sample: string;
  seed: string;
  /** Empty: every document. */
  maxPrompts: string;
  maxSeqLen: string;
  skipFirst: string;
  dimBatch: string;
}

/** The server's defaults. */
export const FIT_DEFAULTS: FitFormValues = { source: 'corpus', corpus: '', sample: '64', seed: '0', maxPrompts: '', maxSeqLen: '128', skipFirst: '16', dimBatch: '8' };

type Result<T> = { ok: true; value: T } | { ok: false; error: string };

function whole(text: string, name: string, min: number): Result<number> {
  const t = text.trim();
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t)) || Number(t) < min) return { ok: false, error: `${name} must be a whole number of at least ${min}.` };
  return { ok: true, value: Number(t) };
}

/**
 * The request of the form as it is (without `resume`), or what is wrong with it, in words. The
 * server says when a value is over its limits.
 */
export function fitRequest(f: FitFormValues): Result<FitJlensRequest> {
  const req: FitJlensRequest = {};
  if (f.source === 'corpus') {
    if (countDocuments(f.corpus) === 0) return { ok: false, error: 'Type or choose a corpus first: one document per line.' };
    req.corpus = f.corpus;
  } else {
    const n = whole(f.sample, 'The number of sampled documents', 1);
    if (!n.ok) return n;
    const seed = whole(f.seed, 'The seed', 0);
    if (!seed.ok) return seed;
    req.sample = n.value;
    req.seed = seed.value;
  }
  if (f.maxPrompts.trim() !== '') {
    const m = whole(f.maxPrompts, 'Max prompts', 1);
    if (!m.ok) return m;
    req.max_prompts = m.value;
  }
  const len = whole(f.maxSeqLen, 'Max sequence length', 2);
  if (!len.ok) return len;
  const skip = whole(f.skipFirst, 'Skip first', 0);
  if (!skip.ok) return skip;
  if (skip.value >= len.value) {
    return { ok: false, error: `Skip first (${skip.value}) must be below the max sequence length (${len.value}): the positions after it are what the fit averages.` };
  }
  const dim = whole(f.dimBatch, 'Dim batch', 1);
  if (!dim.ok) return dim;
  req.max_seq_len = len.value;
  req.skip_first = skip.value;
  req.dim_batch = dim.value;
  return { ok: true, value: req };
}

/** "12 of 40 prompts done": a kept checkpoint in words. */
export function checkpointText(c: FitJlensCheckpoint): string {
  return `${c.n_done} of ${c.total} prompt${c.total === 1 ? '' : 's'} done`;
}

/** A checkpoint's settings: a fit resumes only with those it was made with. */
export interface CheckpointSettings {
  max_seq_len: number;
  skip_first: number;
  dim_batch: number;
  /** Where its prompts came from: "text of 40 documents, sha256 …" or "64 documents sampled from the model, seed 0". */
  corpus: string;
}

export function checkpointSettings(c: FitJlensCheckpoint): CheckpointSettings {
  return { max_seq_len: c.max_seq_len, skip_first: c.skip_first, dim_batch: c.dim_batch, corpus: c.corpus };
}

/** A checkpoint's settings in words: "text of 40 documents, sha256 … · max_seq_len 128 · skip_first 16 · dim_batch 8". */
export function checkpointSettingsText(c: FitJlensCheckpoint): string {
  const s = checkpointSettings(c);
  return [s.corpus, ...(['max_seq_len', 'skip_first', 'dim_batch'] as const).map((k) => `${k} ${s[k]}`)].filter((x) => x).join(' · ');
}

const SAMPLED = /^(\d+) documents? sampled from the model, seed (\d+)$/;

/**
 * The request that continues `c`: its own settings (a fit resumes only with the settings it was
 * made with), its sampled corpus when it was sampled, else the corpus of the form (the server
 * checks it is the same text); max prompts from the form.
 */
export function resumeRequest(f: FitFormValues, c: FitJlensCheckpoint): Result<FitJlensRequest> {
  const s = checkpointSettings(c);
  const sampled = s.corpus ? SAMPLED.exec(s.corpus) : null;
  const form: FitFormValues = {
    ...f,
    ...(sampled ? { source: 'sample' as const, sample: sampled[1], seed: sampled[2] } : {}),
    maxSeqLen: String(s.max_seq_len),
    skipFirst: String(s.skip_first),
    dimBatch: String(s.dim_batch),
  };
  if (!sampled && form.source === 'corpus' && countDocuments(form.corpus) === 0) {
    return { ok: false, error: `Resume continues the fit on the same corpus${s.corpus ? ` (${s.corpus})` : ''}: type or choose it again.` };
  }
  const r = fitRequest(form);
  return r.ok ? { ok: true, value: { ...r.value, resume: true } } : r;
}

/**
 * A fit's progress in words. Its `fitting` events count passes: per prompt one forward pass and
 * ⌈hidden size / dim batch⌉ backward passes, so with those known the prompt is said too
 * ("Fitting prompt 3 of 12 (pass 40 of 204)").
 */
export function describeFitProgress(p: RunProgress | null, shape: { hiddenSize: number; dimBatch: number } | null, idle: string): RunProgressView {
  const view = describeRunProgress(p, idle);
  if (!p || p.stage !== 'fitting' || !shape || shape.hiddenSize <= 0 || shape.dimBatch <= 0) return view;
  const per = Math.ceil(shape.hiddenSize / shape.dimBatch) + 1;
  const total = Math.round(p.total / per);
  if (total < 1 || total * per !== Math.round(p.total)) return view;
  const done = Math.min(total, Math.floor(p.done / per));
  return { ...view, text: done < total ? `Fitting prompt ${done + 1} of ${total} (pass ${view.value?.now ?? 0} of ${view.value?.max ?? 0})` : `Fitted ${total} prompt${total === 1 ? '' : 's'}: saving the lens…` };
}

/** "3.2 s", "2 min 5 s": how long a fit took. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}
