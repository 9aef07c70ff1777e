// Fitting a Jacobian lens (POST /fit_jlens): the form's fields read and checked (a corpus or a
// number of sampled documents, the prompts, sequence length, positions skipped and dimensions per
// backward pass), the request they make, and a kept checkpoint in words.
import type { FitJlensCheckpoint, FitJlensRequest } from '../api/types';
import { countDocuments } from './lensEval';

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

/** "3.2 s", "2 min 5 s": how long a fit took. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}
