// Single heads of a run, kept as they are fetched. The inference response only carries the mean
// over heads of each layer (a 30-layer, 9-head model sends 9× less); the per-head matrices of one
// layer come from GET /runs/{id}/attention while the server still keeps that run (the fetcher:
// useRunAttention's).
import { ApiError, errorMessage } from '../api/client';
import type { AttentionTensor } from './attention';

export const HEADS_GONE_MESSAGE = "This run's per-head attention is no longer kept on the server; run again to see heads";

export type LayerHeads =
  | { status: 'loading' }
  | { status: 'ready'; tensor: AttentionTensor }
  /** `gone`: the server no longer keeps the run (404), so trying again cannot help. */
  | { status: 'error'; message: string; gone: boolean };

export type HeadsFetcher = (runId: number, layer: number) => Promise<AttentionTensor>;

function key(runId: number, layer: number): string {
  return `${runId}:${layer}`;
}

/**
 * Per (run, layer) results, shared by every view of the panel. Requests for a layer that is
 * cached or already under way do nothing; a new run drops the entries of older ones (only one run
 * is on screen, and run ids are never reused); at most `capacity` layers are kept, the least
 * recently requested going first.
 */
export class RunHeadsCache {
  private readonly entries = new Map<string, LayerHeads>();
  private readonly listeners = new Set<() => void>();
  private runId: number | null = null;

  constructor(
    private readonly fetcher: HeadsFetcher,
    private readonly capacity = 8,
  ) {}

  get(runId: number, layer: number): LayerHeads | undefined {
    return this.entries.get(key(runId, layer));
  }

  /** Arrow function: handed as is to useSyncExternalStore. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /** Starts fetching the heads of `layer` unless they are cached, failed or under way. */
  request(runId: number, layer: number): void {
    const k = key(runId, layer);
    const cur = this.entries.get(k);
    if (cur) {
      // Re-inserting marks the entry as recently used.
      this.entries.delete(k);
      this.entries.set(k, cur);
      return;
    }
    this.load(runId, layer);
  }

  /** Fetches again after an error that was not a 404. */
  retry(runId: number, layer: number): void {
    const cur = this.entries.get(key(runId, layer));
    if (cur?.status === 'error' && !cur.gone) {
      this.entries.delete(key(runId, layer));
      this.load(runId, layer);
    }
  }

  private load(runId: number, layer: number): void {
    if (this.runId !== runId) {
      this.entries.clear();
      this.runId = runId;
    }
    const k = key(runId, layer);
    const pending: LayerHeads = { status: 'loading' };
    this.entries.set(k, pending);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.emit();
    this.fetcher(runId, layer).then(
      (tensor) => this.settle(k, pending, { status: 'ready', tensor }),
      (err: unknown) => {
        const gone = err instanceof ApiError && err.status === 404;
        this.settle(k, pending, { status: 'error', message: gone ? HEADS_GONE_MESSAGE : errorMessage(err), gone });
      },
    );
  }

  private settle(k: string, pending: LayerHeads, result: LayerHeads): void {
    // The entry may have been evicted (or its run replaced) while the fetch was under way.
    if (this.entries.get(k) !== pending) return;
    this.entries.set(k, result);
    this.emit();
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}
