import { describe, expect, it } from 'vitest';
import type { ModelEntry } from '../api/types';
import { backendLabel, familyCounts, filterModels, formatBytes, isInstructModel, matchesQuery, normalizeBackend, predefinedIds, shortModelName } from './models';

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

describe('isInstructModel', () => {
  it('is case-insensitive and knows -it and Qwen3', () => {
    expect(isInstructModel('meta-llama/Llama-3.2-1B-Instruct')).toBe(true);
    expect(isInstructModel('microsoft/Phi-3-mini-4k-instruct')).toBe(true);
    expect(isInstructModel('TinyLlama/TinyLlama-1.1B-Chat-v1.0')).toBe(true);
    expect(isInstructModel('meta-llama/Llama-2-7b-chat-hf')).toBe(true);
    expect(isInstructModel('google/gemma-2b-it')).toBe(true);
    expect(isInstructModel('Qwen/Qwen3-0.6B')).toBe(true);
    expect(isInstructModel('SmolLM2-135M-Instruct.Q4_1.gguf')).toBe(true);
  });
  it('base models are not instruct', () => {
    expect(isInstructModel('meta-llama/Llama-3.2-1B')).toBe(false);
    expect(isInstructModel('Qwen/Qwen3-0.6B-Base')).toBe(false);
    expect(isInstructModel('google/gemma-2b')).toBe(false);
    expect(isInstructModel('gpt2')).toBe(false);
    expect(isInstructModel('/work/tests/fixtures/tiny/llama')).toBe(false);
    expect(isInstructModel('EleutherAI/pythia-160m-deduped-v0')).toBe(false);
    expect(isInstructModel('')).toBe(false);
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
  });
  it('the predefined lists hold the original models', () => {
    const ids = predefinedIds();
    expect(ids.has('meta-llama/Llama-3.2-1B')).toBe(true);
    expect(ids.has('Qwen/Qwen3-4B-Base')).toBe(true);
    expect(ids.has('gpt2-xl')).toBe(true);
  });
});
