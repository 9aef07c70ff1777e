import { describe, expect, it } from 'vitest';
import { JACOBIAN, JLENS_FILE, TINY_LLAMA } from '../test/fixtures';
import {
  attachedKind,
  attachedLenses,
  attachedPath,
  effectiveLens,
  isLens,
  jacobianSummary,
  layersText,
  lensChoices,
  LENSES,
  lensName,
  lensPathName,
  lensUnavailable,
  NO_LENSES,
  transportedRowNames,
  type AttachedLenses,
} from './lenses';

const TUNED: AttachedLenses = { tuned: '/x/llama', jacobian: null };
const JAC: AttachedLenses = { tuned: null, jacobian: JACOBIAN };
const BOTH: AttachedLenses = { tuned: '/x/llama', jacobian: JACOBIAN };

describe('lenses', () => {
  it('lists the three lenses and checks values read from files', () => {
    expect(LENSES.map((l) => l.value)).toEqual(['logit', 'tuned', 'jacobian']);
    expect(isLens('tuned')).toBe(true);
    expect(isLens('jacobian')).toBe(true);
    expect(isLens('Tuned')).toBe(false);
    expect(isLens(null)).toBe(false);
  });

  it('names a lens by its folder or file, whatever the separators', () => {
    expect(lensPathName('/work/lenses/llama')).toBe('llama');
    expect(lensPathName('tests/fixtures/research/tuned/llama/')).toBe('llama');
    expect(lensPathName('C:\\lenses\\SmolLM2')).toBe('SmolLM2');
    expect(lensPathName('llama')).toBe('llama');
    expect(lensName('logit')).toBe('logit lens');
    expect(lensName('logit', '/x/llama')).toBe('logit lens');
    expect(lensName('tuned', '/x/llama')).toBe('tuned lens (llama)');
    expect(lensName('tuned', null)).toBe('tuned lens');
    expect(lensName('jacobian', JLENS_FILE)).toBe('Jacobian lens (jlens.pt)');
    expect(lensName('jacobian')).toBe('Jacobian lens');
  });

  it('reads what a model description says is attached', () => {
    expect(attachedLenses(TINY_LLAMA)).toEqual(NO_LENSES);
    expect(attachedLenses(null)).toEqual(NO_LENSES);
    expect(attachedLenses({ ...TINY_LLAMA, tuned_lens: '/x/llama', jacobian_lens: JACOBIAN })).toEqual(BOTH);
    expect(attachedPath('jacobian', BOTH)).toBe(JLENS_FILE);
    expect(attachedPath('tuned', BOTH)).toBe('/x/llama');
    expect(attachedPath('logit', BOTH)).toBeNull();
    // A lens fitted by the server and not saved has no file yet.
    expect(attachedPath('jacobian', { tuned: null, jacobian: { ...JACOBIAN, path: '' } })).toBeNull();
  });

  it('asks for a learned lens only when it is attached and the lens type is block output', () => {
    expect(effectiveLens('tuned', TUNED, 'block_output')).toBe('tuned');
    expect(effectiveLens('tuned', NO_LENSES, 'block_output')).toBe('logit');
    expect(effectiveLens('tuned', JAC, 'block_output')).toBe('logit');
    expect(effectiveLens('tuned', TUNED, 'post_attention')).toBe('logit');
    expect(effectiveLens('jacobian', JAC, 'block_output')).toBe('jacobian');
    expect(effectiveLens('jacobian', TUNED, 'block_output')).toBe('logit');
    expect(effectiveLens('jacobian', BOTH, 'combined')).toBe('logit');
    expect(effectiveLens('logit', BOTH, 'block_output')).toBe('logit');
    expect(effectiveLens(undefined, BOTH, 'block_output')).toBe('logit');
    expect(lensUnavailable('logit', NO_LENSES, 'combined')).toBeNull();
    expect(lensUnavailable('jacobian', TUNED, 'block_output')).toMatch(/^No Jacobian lens is attached: attach its file under Lenses in the header, or fit one/);
    expect(lensUnavailable('tuned', JAC, 'block_output')).toMatch(/^No tuned lens is attached/);
    expect(lensUnavailable('jacobian', JAC, 'post_attention')).toMatch(/read block outputs: choose the Block Output lens type/);
  });

  it('the lens select: none without a learned lens; a lens not attached listed, disabled, with why', () => {
    expect(lensChoices(NO_LENSES, 'block_output')).toBeNull();
    const jac = lensChoices(JAC, 'block_output')!;
    expect(jac.disabledReason).toBeNull();
    expect(jac.options.map((o) => [o.value, o.label, o.disabledReason === null])).toEqual([
      ['logit', 'Logit lens', true],
      ['tuned', 'Tuned lens (none attached)', false],
      ['jacobian', 'Jacobian lens (jlens.pt)', true],
    ]);
    expect(jac.options[1].disabledReason).toMatch(/No tuned lens is attached/);
    expect(jac.options[2].path).toBe(JLENS_FILE);
    const both = lensChoices(BOTH, 'combined')!;
    expect(both.disabledReason).toMatch(/read block outputs/);
    expect(both.options.map((o) => o.label)).toEqual(['Logit lens', 'Tuned lens (llama)', 'Jacobian lens (jlens.pt)']);
    expect(lensChoices({ tuned: null, jacobian: { ...JACOBIAN, path: '' } }, 'block_output')!.options[2].label).toBe('Jacobian lens (fitted here)');
  });

  it('says a Jacobian lens in a few words, and the rows it transports', () => {
    expect(layersText([0, 1])).toBe('layers 0–1');
    expect(layersText([0, 2, 3, 4])).toBe('layers 0, 2–4');
    expect(layersText([5])).toBe('layer 5');
    expect(jacobianSummary(JACOBIAN)).toBe('jlens.pt · 12 prompts · layers 0–1');
    expect(jacobianSummary({ ...JACOBIAN, path: '', n_prompts: 1, source_layers: [3] })).toBe('fitted here, not saved · 1 prompt · layer 3');
    expect(transportedRowNames(JACOBIAN)).toEqual(['Layer 0', 'Layer 1']);
    expect(transportedRowNames(null)).toEqual([]);
  });
});

describe('attachedKind', () => {
  it('tells which lens a path attached: the one named by it, else the one that changed', () => {
    expect(attachedKind(JLENS_FILE, NO_LENSES, JAC)).toBe('jacobian');
    expect(attachedKind('/x/llama/', NO_LENSES, TUNED)).toBe('tuned');
    // Given relative, answered absolute.
    expect(attachedKind('lenses/jlens.pt', TUNED, { tuned: '/x/llama', jacobian: { ...JACOBIAN, path: '/srv/lenses/jlens.pt' } })).toBe('jacobian');
    // The same file again: still the Jacobian lens.
    expect(attachedKind(JLENS_FILE, BOTH, BOTH)).toBe('jacobian');
    // A path the answer does not echo: the lens that changed.
    expect(attachedKind('~/j.pt', TUNED, BOTH)).toBe('jacobian');
    expect(attachedKind('~/t', JAC, BOTH)).toBe('tuned');
    expect(attachedKind('~/t', BOTH, BOTH)).toBeNull();
  });
});
