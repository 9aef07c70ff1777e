// What the progress indicators say: about a model load (the load bar), and about a run (the
// "run" events of /events: queued, forward pass, lens; an evaluation's documents; a patching
// sweep's runs; a generation's tokens written).
import type { LoadingStatus, LoadStage, RunProgress, RunStage } from '../api/types';
import { formatBytes } from './models';

export interface ProgressView {
  /** "Resolving", "Downloading", "Loading tensors", "Finishing" */
  stage: string;
  /** file, bytes or tensor counts, when known */
  detail: string;
  /** 0..1, or null for an indeterminate bar */
  fraction: number | null;
}

const STAGES: Record<LoadStage, string> = {
  resolving: 'Resolving',
  downloading: 'Downloading',
  loading_tensors: 'Loading tensors',
  ready: 'Finishing',
};

export function describeLoading(l: LoadingStatus | null | undefined): ProgressView {
  if (!l) return { stage: 'Loading', detail: '', fraction: null };
  // A stage a newer server added is shown as it is.
  const stage = STAGES[l.stage] ?? l.stage;
  const parts: string[] = [];
  if (l.stage === 'downloading' || (l.bytes != null && l.stage !== 'loading_tensors')) {
    if (l.file) parts.push(l.file);
    if (l.bytes != null) parts.push(l.total_bytes ? `${formatBytes(l.bytes)} / ${formatBytes(l.total_bytes)}` : formatBytes(l.bytes));
  }
  if (l.stage === 'loading_tensors' && l.tensors_total) {
    parts.push(`tensors ${l.tensors_done ?? 0} / ${l.tensors_total}`);
  }
  let fraction: number | null = null;
  if (typeof l.progress === 'number' && Number.isFinite(l.progress)) fraction = Math.max(0, Math.min(1, l.progress));
  else if (l.stage === 'downloading' && l.bytes != null && l.total_bytes) fraction = Math.min(1, l.bytes / l.total_bytes);
  else if (l.stage === 'loading_tensors' && l.tensors_total) fraction = Math.min(1, (l.tensors_done ?? 0) / l.tensors_total);
  // Tensors are all read but the model is still being assembled.
  if (l.stage === 'loading_tensors' && fraction === 1) return { stage: 'Preparing model', detail: parts.join(' · '), fraction: null };
  return { stage, detail: parts.join(' · '), fraction };
}

const RUN_STAGES: readonly RunStage[] = ['queued', 'forward', 'lens', 'documents', 'sampling', 'patching', 'generating', 'fitting'];

/** The data of a "run" event, or null when it is not a RunProgress (a malformed event is skipped). */
export function parseRunProgress(data: string): RunProgress | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const request = o.request ?? null;
  if (request !== null && typeof request !== 'string') return null;
  if (typeof o.stage !== 'string' || !(RUN_STAGES as readonly string[]).includes(o.stage)) return null;
  if (typeof o.done !== 'number' || typeof o.total !== 'number' || !Number.isFinite(o.done) || !Number.isFinite(o.total)) return null;
  return { request, stage: o.stage as RunStage, done: o.done, total: o.total };
}

export interface RunProgressView {
  /** "Waiting for 2 runs ahead…", "Layer 12 of 30", "Lens 3 of 31", "12 of 40 documents", "Sampling the corpus: 96 of 256 tokens", "Patched run 5 of 60", "Writing token 5 of 64", "Fitting: pass 12 of 40", "Running the model…" */
  text: string;
  /** For a progress bar: done of total, or null (indeterminate: waiting, or nothing heard yet). */
  value: { now: number; max: number } | null;
}

/**
 * What the page says about its run in progress; `p` is the run's latest event (null: none yet,
 * when `idle` is said).
 */
export function describeRunProgress(p: RunProgress | null, idle = 'Running the model…'): RunProgressView {
  if (!p) return { text: idle, value: null };
  const max = Math.max(0, Math.round(p.total));
  const now = Math.min(max, Math.max(0, Math.round(p.done)));
  switch (p.stage) {
    case 'queued':
      // `done`: the runs waiting ahead of this one (0: only the one computing now).
      return { text: now === 0 ? 'Waiting for the run in progress to finish…' : `Waiting for ${now} run${now === 1 ? '' : 's'} ahead…`, value: null };
    case 'forward':
      return { text: `Layer ${now} of ${max}`, value: max > 0 ? { now, max } : null };
    case 'lens':
      return { text: `Lens ${now} of ${max}`, value: max > 0 ? { now, max } : null };
    case 'documents':
      // An evaluation: `done` documents of the corpus measured.
      return { text: `${now} of ${max} document${max === 1 ? '' : 's'}`, value: max > 0 ? { now, max } : null };
    case 'sampling':
      // An evaluation of a sampled corpus, while the model writes it: `done` tokens of all.
      return { text: `Sampling the corpus: ${now} of ${max} tokens`, value: max > 0 ? { now, max } : null };
    case 'patching':
      // A sweep: `done` of its patched runs (a layer and position each) finished.
      return { text: `Patched run ${now} of ${max}`, value: max > 0 ? { now, max } : null };
    case 'generating':
      // `done` tokens written of at most `total`: the next one is being written, until all are
      // (the answer is then put together, and the baseline's continuation written with compare).
      return { text: now < max ? `Writing token ${now + 1} of ${max}` : `Wrote ${max} token${max === 1 ? '' : 's'}: finishing…`, value: max > 0 ? { now, max } : null };
    case 'fitting':
      // A lens's fit: `done` of its passes (a Jacobian lens's: per prompt a forward pass and its
      // backward passes; the fit's view says which prompt when it knows the passes per prompt).
      return { text: `Fitting: pass ${now} of ${max}`, value: max > 0 ? { now, max } : null };
    default:
      return { text: idle, value: null };
  }
}
