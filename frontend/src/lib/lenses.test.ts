import { describe, expect, it } from 'vitest';
import { effectiveLens, isLens, LENSES, lensFolderName, lensName, tunedLensUnavailable } from './lenses';

describe('lenses', () => {
  it('lists the two lenses and checks values read from files', () => {
    expect(LENSES.map((l) => l.value)).toEqual(['logit', 'tuned']);
    expect(isLens('tuned')).toBe(true);
    expect(isLens('Tuned')).toBe(false);
    expect(isLens(null)).toBe(false);
  });

  it('names a tuned lens by its folder, whatever the separators', () => {
    expect(lensFolderName('/work/lenses/llama')).toBe('llama');
    expect(lensFolderName('tests/fixtures/research/tuned/llama/')).toBe('llama');
    expect(lensFolderName('C:\\lenses\\SmolLM2')).toBe('SmolLM2');
    expect(lensFolderName('llama')).toBe('llama');
    expect(lensName('logit')).toBe('logit lens');
    expect(lensName('logit', '/x/llama')).toBe('logit lens');
    expect(lensName('tuned', '/x/llama')).toBe('tuned lens (llama)');
    expect(lensName('tuned', null)).toBe('tuned lens');
  });

  it('asks for the tuned lens only when one is attached and the lens type is block output', () => {
    expect(effectiveLens('tuned', '/x/llama', 'block_output')).toBe('tuned');
    expect(effectiveLens('tuned', null, 'block_output')).toBe('logit');
    expect(effectiveLens('tuned', '/x/llama', 'post_attention')).toBe('logit');
    expect(effectiveLens('logit', '/x/llama', 'block_output')).toBe('logit');
    expect(effectiveLens(undefined, '/x/llama', 'block_output')).toBe('logit');
    expect(tunedLensUnavailable('block_output')).toBeNull();
    expect(tunedLensUnavailable('combined')).toMatch(/block outputs/);
  });
});
