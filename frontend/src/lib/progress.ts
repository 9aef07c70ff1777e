// What the progress indicator says about a model load.
import type { LoadingStatus, LoadStage } from '../api/types';
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
