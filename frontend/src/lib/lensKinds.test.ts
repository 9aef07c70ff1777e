import { describe, expect, it } from 'vitest';
import { effectiveLens, isLensKind, LENS_KINDS, lensFolderName, lensName, tunedLensUnavailable } from './lensKinds';

describe('lens kinds', () => {
  it('lists the two lenses and checks values read from files', () => {
    expect(LENS_KINDS.map((l) => l.value)).toEqual(['logit', 'tuned']);
    expect(isLensKind('tuned')).toBe(true);
    expect(isLensKind('Tuned')).toBe(false);
    expect(isLensKind(null)).toBe(false);
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
