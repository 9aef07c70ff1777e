import { describe, expect, it } from 'vitest';
import type { Backend, ModelEntry } from '../api/types';
import { backendLabel, familyCounts, filterModels, formatBytes, matchesQuery, modelGroups, normalizeBackend, shortModelName } from './models';

const entry = (id: string, name: string, family: string, size: string | null, cached = false): ModelEntry => ({
  id,
  name,
  family,
  size,
  cached,
  source: 'curated',
  backends: ['custom'],
  instruct: false,
});

const MODELS: ModelEntry[] = [
  entry('SmolLM2-135M-Instruct.Q4_1.gguf', 'SmolLM2 135M Instruct (Q4_1 GGUF, default)', 'SmolLM2', '135M', true),
  entry('HuggingFaceTB/SmolLM2-360M-Instruct', 'SmolLM2 360M Instruct', 'SmolLM2', '360M'),
  entry('meta-llama/Llama-3.2-1B', 'Llama 3.2 1B', 'Llama', '1B'),
  entry('Qwen/Qwen3-0.6B', 'Qwen3 0.6B (Instruct)', 'Qwen3', '0.6B'),
  entry('EleutherAI/pythia-x', 'Pythia tiny', 'Pythia', '160M'),
];

describe('model browser filter', () => {
  it('matches id, name, family and size, case-insensitively', () => {
    expect(filterModels(MODELS, 'qwen3', 'All').map((m) => m.id)).toEqual(['Qwen/Qwen3-0.6B']);
    expect(filterModels(MODELS, 'huggingfacetb', 'All')).toHaveLength(1); // id only
    expect(filterModels(MODELS, 'LLAMA', 'All').map((m) => m.family)).toEqual(['Llama']);
    expect(filterModels(MODELS, 'pythia', 'All')).toHaveLength(1); // family
  });
  it('searches the size field too (not only ids)', () => {
    // "160m" appears only in the size of the Pythia entry, not in its id or name.
    expect(filterModels(MODELS, '160m', 'All').map((m) => m.id)).toEqual(['EleutherAI/pythia-x']);
    expect(filterModels(MODELS, '1b', 'All').map((m) => m.id)).toEqual(['meta-llama/Llama-3.2-1B']);
  });
  it('needs every word to match', () => {
    expect(filterModels(MODELS, 'smol instruct 360', 'All')).toHaveLength(1);
    expect(filterModels(MODELS, 'smol base', 'All')).toHaveLength(0);
  });
  it('filters by family chip', () => {
    expect(filterModels(MODELS, '', 'SmolLM2')).toHaveLength(2);
    expect(filterModels(MODELS, '360', 'SmolLM2')).toHaveLength(1);
    expect(filterModels(MODELS, '360', 'Llama')).toHaveLength(0);
    expect(filterModels(MODELS, '', '')).toHaveLength(5);
  });
  it('an empty query matches everything', () => {
    expect(matchesQuery(MODELS[0], '   ')).toBe(true);
  });
  it('family chips are sorted with counts', () => {
    expect(familyCounts(MODELS)).toEqual([
      { family: 'Llama', count: 1 },
      { family: 'Pythia', count: 1 },
      { family: 'Qwen3', count: 1 },
      { family: 'SmolLM2', count: 2 },
    ]);
  });
});

describe('modelGroups', () => {
  const e = (id: string, family: string, backends: string[]): ModelEntry => ({ ...entry(id, id, family, null), backends });
  // As the server lists them: its default first, cached extras appended at the end.
  const LIST: ModelEntry[] = [
    e('SmolLM2-135M-Instruct.Q4_1.gguf', 'SmolLM2', ['custom', 'hooked']),
    e('HuggingFaceTB/SmolLM2-135M', 'SmolLM2', ['custom', 'hooked']),
    e('meta-llama/Llama-3.2-1B', 'Llama', ['custom', 'hooked']),
    e('gpt2', 'GPT-2', ['hooked']),
    e('Qwen/Qwen3-0.6B', 'Qwen3', ['custom', 'hooked']),
    e('HuggingFaceTB/SmolLM2-360M-Instruct', 'SmolLM2', ['custom', 'hooked']),
    e('EleutherAI/pythia-70m', 'Other', ['hooked']),
  ];
  const shape = (backend: Backend) => modelGroups(LIST, backend).map((g) => [g.family, g.models.map((m) => m.id)]);

  it('groups by family in the server\'s order, keeping what the backend runs', () => {
    expect(shape('custom')).toEqual([
      ['SmolLM2', ['SmolLM2-135M-Instruct.Q4_1.gguf', 'HuggingFaceTB/SmolLM2-135M', 'HuggingFaceTB/SmolLM2-360M-Instruct']],
      ['Llama', ['meta-llama/Llama-3.2-1B']],
      ['Qwen3', ['Qwen/Qwen3-0.6B']],
    ]);
    expect(shape('hooked')).toEqual([
      ['SmolLM2', ['SmolLM2-135M-Instruct.Q4_1.gguf', 'HuggingFaceTB/SmolLM2-135M', 'HuggingFaceTB/SmolLM2-360M-Instruct']],
      ['Llama', ['meta-llama/Llama-3.2-1B']],
      ['GPT-2', ['gpt2']],
      ['Qwen3', ['Qwen/Qwen3-0.6B']],
      ['Other', ['EleutherAI/pythia-70m']],
    ]);
  });
  it('keeps the entries themselves (names, cached and instruct flags)', () => {
    const [first] = modelGroups(MODELS, 'custom');
    expect(first.models[0]).toBe(MODELS[0]);
  });
  it('has no groups without entries, or for a backend nothing runs on', () => {
    expect(modelGroups([], 'custom')).toEqual([]);
    expect(modelGroups(LIST.filter((m) => !m.backends.includes('custom')), 'custom')).toEqual([]);
  });
});

describe('helpers', () => {
  it('formatBytes', () => {
    expect(formatBytes(98_362_432)).toBe('98.4 MB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1_500_000_000)).toBe('1.5 GB');
    expect(formatBytes(null)).toBe('');
  });
  it('shortModelName', () => {
    expect(shortModelName('meta-llama/Llama-3.2-1B')).toBe('Llama-3.2-1B');
    expect(shortModelName('SmolLM2-135M-Instruct.Q4_1.gguf')).toBe('SmolLM2-135M-Instruct.Q4_1');
    expect(shortModelName('/a/b/tiny/llama/')).toBe('llama');
  });
  it('backends', () => {
    expect(normalizeBackend('transformerlens')).toBe('hooked');
    expect(normalizeBackend('hooked')).toBe('hooked');
    expect(normalizeBackend(undefined)).toBe('custom');
    expect(backendLabel('hooked')).toMatch(/TransformerLens-style/);
    expect(backendLabel('transformerlens')).toBe(backendLabel('hooked'));
    expect(backendLabel('custom')).toBe('Custom');
  });
});
