// Model lists: the predefined choices of the header select, the browser's filter, and the
// instruct-model rule that turns the chat template on.
import type { ModelEntry } from '../api/types';

export const DEFAULT_MODEL = 'SmolLM2-135M-Instruct.Q4_1.gguf';

export interface ModelGroup {
  label: string;
  models: { id: string; label: string }[];
}

/** The original's predefined lists (custom backend), with our default model first. */
export const CUSTOM_GROUPS: ModelGroup[] = [
  {
    label: 'SmolLM2',
    models: [
      { id: DEFAULT_MODEL, label: 'SmolLM2 135M Instruct (Q4_1 GGUF, default)' },
      { id: 'HuggingFaceTB/SmolLM2-135M', label: 'SmolLM2 135M' },
      { id: 'HuggingFaceTB/SmolLM2-135M-Instruct', label: 'SmolLM2 135M Instruct' },
    ],
  },
  {
    label: 'Llama Models',
    models: [
      { id: 'meta-llama/Llama-3.2-1B', label: 'Llama 3.2 1B' },
      { id: 'meta-llama/Llama-3.2-3B', label: 'Llama 3.2 3B' },
      { id: 'meta-llama/Llama-3.2-1B-Instruct', label: 'Llama 3.2 1B Instruct' },
      { id: 'meta-llama/Llama-3.2-3B-Instruct', label: 'Llama 3.2 3B Instruct' },
      { id: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0', label: 'TinyLlama 1.1B' },
    ],
  },
  {
    label: 'Qwen3 Models',
    models: [
      { id: 'Qwen/Qwen3-0.6B', label: 'Qwen3 0.6B (Instruct)' },
      { id: 'Qwen/Qwen3-0.6B-Base', label: 'Qwen3 0.6B Base' },
      { id: 'Qwen/Qwen3-1.7B', label: 'Qwen3 1.7B (Instruct)' },
      { id: 'Qwen/Qwen3-1.7B-Base', label: 'Qwen3 1.7B Base' },
      { id: 'Qwen/Qwen3-4B', label: 'Qwen3 4B (Instruct)' },
      { id: 'Qwen/Qwen3-4B-Base', label: 'Qwen3 4B Base' },
    ],
  },
];

/** The original's TransformerLens lists, offered with the hooked backend. */
export const HOOKED_GROUPS: ModelGroup[] = [
  CUSTOM_GROUPS[0],
  CUSTOM_GROUPS[1],
  {
    label: 'Qwen2.5 Models',
    models: [
      { id: 'Qwen/Qwen2.5-0.5B', label: 'Qwen2.5 0.5B' },
      { id: 'Qwen/Qwen2.5-0.5B-Instruct', label: 'Qwen2.5 0.5B Instruct' },
      { id: 'Qwen/Qwen2.5-1.5B', label: 'Qwen2.5 1.5B' },
      { id: 'Qwen/Qwen2.5-1.5B-Instruct', label: 'Qwen2.5 1.5B Instruct' },
      { id: 'Qwen/Qwen2.5-3B', label: 'Qwen2.5 3B' },
      { id: 'Qwen/Qwen2.5-3B-Instruct', label: 'Qwen2.5 3B Instruct' },
      { id: 'Qwen/Qwen2.5-7B', label: 'Qwen2.5 7B' },
      { id: 'Qwen/Qwen2.5-7B-Instruct', label: 'Qwen2.5 7B Instruct' },
    ],
  },
  {
    label: 'GPT-2 Models',
    models: [
      { id: 'gpt2', label: 'GPT-2 (124M)' },
      { id: 'gpt2-medium', label: 'GPT-2 Medium (355M)' },
      { id: 'gpt2-large', label: 'GPT-2 Large (774M)' },
      { id: 'gpt2-xl', label: 'GPT-2 XL (1.5B)' },
    ],
  },
  {
    label: 'Mistral Models',
    models: [
      { id: 'mistralai/Mistral-7B-v0.1', label: 'Mistral 7B' },
      { id: 'mistralai/Mistral-7B-Instruct-v0.1', label: 'Mistral 7B Instruct' },
    ],
  },
  {
    label: 'Phi Models',
    models: [
      { id: 'microsoft/phi-2', label: 'Phi-2 (2.7B)' },
      { id: 'microsoft/Phi-3-mini-4k-instruct', label: 'Phi-3 Mini 4K Instruct' },
    ],
  },
  {
    label: 'Gemma Models',
    models: [
      { id: 'google/gemma-2b', label: 'Gemma 2B' },
      { id: 'google/gemma-2b-it', label: 'Gemma 2B Instruct' },
      { id: 'google/gemma-7b', label: 'Gemma 7B' },
      { id: 'google/gemma-7b-it', label: 'Gemma 7B Instruct' },
    ],
  },
];

export function groupsFor(backend: string): ModelGroup[] {
  return backend === 'custom' ? CUSTOM_GROUPS : HOOKED_GROUPS;
}

/** Every id of the predefined lists (both backends). */
export function predefinedIds(): Set<string> {
  const ids = new Set<string>();
  for (const g of [...CUSTOM_GROUPS, ...HOOKED_GROUPS]) for (const m of g.models) ids.add(m.id);
  return ids;
}

/**
 * Whether a model is an instruct/chat model, case-insensitively: "Instruct", "Chat", a "-it"
 * suffix (Gemma), or a Qwen3 that is not "-Base".
 */
export function isInstructModel(name: string | null | undefined): boolean {
  if (!name) return false;
  const base = name.split('/').pop() ?? name;
  const n = base.toLowerCase();
  if (/instruct|chat/.test(n)) return true;
  if (/(^|[-_.])it($|[-_.@])/.test(n)) return true;
  if (n.includes('qwen3') && !n.includes('-base')) return true;
  return false;
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

export function backendLabel(b: string | null | undefined): string {
  if (b === 'hooked' || b === 'transformerlens') return 'Hooked (TransformerLens-style)';
  if (b === 'custom') return 'Custom';
  return b ?? '';
}

/** The select's value for a backend string the server reports. */
export function normalizeBackend(b: string | null | undefined): 'custom' | 'hooked' {
  return b === 'hooked' || b === 'transformerlens' ? 'hooked' : 'custom';
}
