// Model lists: the header select's groups and the browser's filter, both over GET /models (the
// server's list is the only one: it knows which backends run a model and which are instruct).
import type { Backend, ModelEntry } from '../api/types';

export interface ModelGroup {
  family: string;
  models: ModelEntry[];
}

/**
 * The header select's groups: the entries `backend` can run, by family, families and entries in
 * the server's order (it lists its default model first).
 */
export function modelGroups(models: ModelEntry[], backend: Backend): ModelGroup[] {
  const groups = new Map<string, ModelEntry[]>();
  for (const m of models) {
    if (!m.backends.includes(backend)) continue;
    const group = groups.get(m.family);
    if (group) group.push(m);
    else groups.set(m.family, [m]);
  }
  return [...groups].map(([family, entries]) => ({ family, models: entries }));
}

/** Case-insensitive match of every word of `query` against id, name, family and size. */
export function matchesQuery(m: ModelEntry, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const hay = [m.id, m.name, m.family, m.size ?? ''].join('\n').toLowerCase();
  return words.every((w) => hay.includes(w));
}

/** The browser's filter: the query and the family chip ("" or "All" = every family). */
export function filterModels(models: ModelEntry[], query: string, family: string): ModelEntry[] {
  const fam = family === 'All' ? '' : family;
  return models.filter((m) => (!fam || m.family === fam) && matchesQuery(m, query));
}

/** Family chips: distinct families sorted case-insensitively, with counts. */
export function familyCounts(models: ModelEntry[]): { family: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const m of models) counts.set(m.family, (counts.get(m.family) ?? 0) + 1);
  return [...counts.entries()]
    .map(([family, count]) => ({ family, count }))
    .sort((a, b) => a.family.localeCompare(b.family, undefined, { sensitivity: 'base' }));
}

/** Bytes in human units: 98.4 MB, 1.2 GB. */
export function formatBytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '';
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do {
    v /= 1000;
    u++;
  } while (v >= 1000 && u < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

/** Short name of a model id for titles: the last path segment without ".gguf". */
export function shortModelName(id: string | null | undefined): string {
  if (!id) return 'model';
  const last = id.replace(/[\\/]+$/, '').split(/[\\/]/).pop() ?? id;
  return last.replace(/\.gguf$/i, '');
}

const BACKEND_LABELS: Record<Backend, string> = {
  custom: 'Custom',
  hooked: 'Hooked (TransformerLens-style)',
  transformerlens: 'Hooked (TransformerLens-style)',
};

/** The header's backend select: `transformerlens` is not offered, being `hooked` under the original's name. */
export const BACKEND_OPTIONS: { value: Backend; label: string }[] = [
  { value: 'custom', label: 'Custom (Llama / Qwen3)' },
  { value: 'hooked', label: BACKEND_LABELS.hooked },
];

export function backendLabel(b: Backend): string {
  // A name a newer server added is shown as it is.
  return BACKEND_LABELS[b] ?? b;
}

/**
 * The select's value for a backend: the server's (it echoes `transformerlens` when a model was
 * loaded under that name), or a string from a saved session; anything else is `custom`, the
 * server's default.
 */
export function normalizeBackend(b: string | null | undefined): Backend {
  return b === 'hooked' || b === 'transformerlens' ? 'hooked' : 'custom';
}
