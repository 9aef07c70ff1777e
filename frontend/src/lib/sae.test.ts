import { describe, expect, it } from 'vitest';
import { lensRows, SAES, saeReadout } from '../test/fixtures';
import { describeIntervention, describeKey, interventionWarning, normalizeInterventions, streamKey, buildStreamIntervention } from './interventions';
import { buildSaeIntervention, corpusFields, formatAct, placeSaeRows, readoutMax, saeQualityCells, saeShade, saeTooltipLines, topFeature, type SaeFormValues } from './sae';
import { SAE_EVAL } from '../test/fixtures';
import { saeFields, sameOptions } from './runOptions';
import type { RunRequest } from '../api/types';

const ROWS = lensRows(['Embeddings', 'Layer 0', 'Layer 1', 'Final Output']);

describe('placeSaeRows', () => {
  it('puts each readout after the lens row it names, in the answer’s order; a row not in the grid goes last', () => {
    const a = saeReadout('a', 'Layer 1');
    const b = saeReadout('b', 'Layer 0');
    const c = saeReadout('c', 'Layer 1');
    const d = saeReadout('d', 'Layer 0 (attention)');
    const p = placeSaeRows(ROWS, [a, b, c, d]);
    expect([...p.after.entries()].map(([i, l]) => [i, l.map((s) => s.name)])).toEqual([
      [2, ['a', 'c']],
      [1, ['b']],
    ]);
    expect(p.unplaced.map((s) => s.name)).toEqual(['d']);
  });
});

describe('cells and tooltips', () => {
  it('the top feature, the row’s max and the shade', () => {
    const s = saeReadout('a', 'Layer 0');
    expect(topFeature(s.positions[0])).toBeNull();
    expect(topFeature(s.positions[2])).toEqual({ id: 3, act: 2 });
    expect(readoutMax(s)).toBe(3);
    expect(saeShade(1.5, 3)).toBe(0.5);
    expect(saeShade(1, 0)).toBe(0);
  });

  it('lists every feature with its activation, then L0 and the reconstruction error', () => {
    const s = saeReadout('a', 'Layer 0');
    expect(saeTooltipLines(s.positions[3])).toEqual({ features: ['#4 3', '#9 0.5'], l0: 'L0 2', recon: 'reconstruction error 0.75' });
    expect(formatAct(0.123456)).toBe('0.123');
    expect(formatAct(12345)).toBe('1.23e+4');
  });
});

describe('buildSaeIntervention', () => {
  const form = (over: Partial<SaeFormValues> = {}): SaeFormValues => ({ sae: 'relu_resid_post_0', op: 'sae_ablate', feature: '5', value: '4', tokenIndex: '', ...over });
  const ctx = { attached: SAES, seqLen: 4 };

  it('keys an operation by the SAE’s hook, naming the SAE and its feature', () => {
    expect(buildSaeIntervention(form(), ctx)).toEqual({ ok: true, value: { key: 'blocks.0.hook_resid_post', config: { type: 'sae_ablate', sae: 'relu_resid_post_0', feature: 5 } } });
    expect(buildSaeIntervention(form({ sae: 'topk_resid_pre_1', op: 'sae_clamp', value: '2.5', tokenIndex: '-1' }), ctx)).toEqual({
      ok: true,
      value: { key: 'blocks.1.hook_resid_pre', config: { type: 'sae_clamp', sae: 'topk_resid_pre_1', feature: 5, value: 2.5, token_index: -1 } },
    });
    expect(buildSaeIntervention(form({ op: 'sae_splice', feature: '' }), ctx)).toEqual({ ok: true, value: { key: 'blocks.0.hook_resid_post', config: { type: 'sae_splice', sae: 'relu_resid_post_0' } } });
  });

  it('says what is wrong in words', () => {
    const err = (over: Partial<SaeFormValues>, c: Parameters<typeof buildSaeIntervention>[1] = ctx) => {
      const r = buildSaeIntervention(form(over), c);
      return r.ok ? null : r.error;
    };
    expect(err({}, { attached: [] })).toMatch(/^Attach an SAE/);
    expect(err({ feature: '32' })).toBe('Feature 32 does not exist: relu_resid_post_0 has 32 features (0..31)');
    expect(err({ feature: 'x' })).toBe('Feature “x” is not a whole number');
    expect(err({ op: 'sae_steer', value: '0' })).toMatch(/^A coefficient of 0 changes nothing/);
    expect(err({ op: 'sae_clamp', value: '' })).toMatch(/^Clamp needs the activation/);
    expect(err({ tokenIndex: '4' })).toBe('Token index 4 is out of range for a 4-token input (valid: -4..3)');
    expect(err({ sae: 'gone' })).toBe('No SAE named “gone” is attached (attached: relu_resid_post_0, topk_resid_pre_1)');
  });
});

describe('SAE operations in the interventions list', () => {
  it('describes them, keeps them through a session, and warns when the SAE is gone or the key is not its hook', () => {
    expect(describeIntervention({ type: 'sae_ablate', sae: 'a', feature: 5, token_index: 2 })).toBe('sae_ablate(a #5) @ Token 2');
    expect(describeIntervention({ type: 'sae_clamp', sae: 'a', feature: 5, value: 3 })).toBe('sae_clamp(a #5 = 3)');
    expect(describeIntervention({ type: 'sae_steer', sae: 'a', feature: 5, value: -2 })).toBe('sae_steer(a #5 × -2)');
    expect(describeIntervention({ type: 'sae_splice', sae: 'a' })).toBe('sae_splice(a)');
    expect(normalizeInterventions({ 'blocks.0.hook_resid_post': { type: 'sae_clamp', sae: 'a', feature: 5, value: 3, junk: 1 } })).toEqual({
      'blocks.0.hook_resid_post': [{ type: 'sae_clamp', sae: 'a', feature: 5, value: 3 }],
    });
    const saes = SAES.map((s) => ({ name: s.name, hook: s.hook }));
    expect(interventionWarning('blocks.0.hook_resid_post', { type: 'sae_ablate', sae: 'relu_resid_post_0', feature: 1 }, { saes })).toBeNull();
    expect(interventionWarning('blocks.0.hook_resid_post', { type: 'sae_ablate', sae: 'other', feature: 1 }, { saes })).toBe('no SAE named “other” is attached (attached: relu_resid_post_0, topk_resid_pre_1)');
    expect(interventionWarning('blocks.1.hook_resid_post', { type: 'sae_ablate', sae: 'relu_resid_post_0', feature: 1 }, { saes })).toBe('relu_resid_post_0 reads blocks.0.hook_resid_post, not blocks.1.hook_resid_post');
    expect(describeKey('blocks.1.hook_resid_post')).toBe('Layer 1 · block output');
  });
});

describe('stream locations', () => {
  it('the residual stream entering a layer and after its attention, per layer and at all layers', () => {
    expect(streamKey(2, 'resid_pre', false)).toBe('blocks.2.hook_resid_pre');
    expect(streamKey(2, 'resid_mid', false)).toBe('blocks.2.hook_resid_mid');
    expect(streamKey(0, 'resid_mid', true)).toBe('all_layers_resid_mid');
    expect(describeKey('blocks.2.hook_resid_pre')).toBe('Layer 2 · residual stream entering the layer');
    expect(describeKey('all_layers_resid_mid')).toBe('All layers · residual stream after attention');
    const r = buildStreamIntervention({ layer: '1', location: 'resid_pre', op: 'zero', value: '', vector: '', tokenIndex: '', allLayers: false }, { numLayers: 2 });
    expect(r).toEqual({ ok: true, value: { key: 'blocks.1.hook_resid_pre', config: { type: 'zero', all_layers: false } } });
  });
});

describe('corpus and quality', () => {
  it('a corpus is a text with documents or a number to sample', () => {
    expect(corpusFields({ kind: 'text', text: 'a\n\nb' })).toEqual({ ok: true, value: { corpus: 'a\n\nb' } });
    expect(corpusFields({ kind: 'text', text: ' \n' })).toEqual({ ok: false, error: 'Choose a .txt file first: one document per line' });
    expect(corpusFields({ kind: 'sample', count: '16' })).toEqual({ ok: true, value: { sample: 16 } });
    expect(corpusFields({ kind: 'sample', count: '0' }).ok).toBe(false);
  });

  it('the quality table’s cells', () => {
    expect(saeQualityCells(SAE_EVAL.saes[0])).toEqual({
      name: 'relu_resid_post_0',
      hook: 'blocks.0.hook_resid_post',
      deltaCe: '+0.2500',
      lossRecovered: '75.0%',
      kl: '0.1250',
      ev: '0.875',
      mse: '0.0625',
      l0: '12.5',
      dead: '3 / 32',
    });
  });
});

describe('the SAE features run option', () => {
  it('asks for them only with SAEs attached, and a run made without them is not the same', () => {
    const o = { compare: false, analysis: false, track: [], sae: true, saeTopK: 4 };
    expect(saeFields(o, 0)).toEqual({});
    expect(saeFields(o, 2)).toEqual({ sae: true, sae_top_k: 4 });
    expect(saeFields({ ...o, sae: false }, 2)).toEqual({});
    const req = { text: 't', interventions: {}, lens_type: 'block_output', apply_chat_template: false, return_attention: true } as RunRequest;
    expect(sameOptions(req, o, 0)).toBe(true);
    expect(sameOptions(req, o, 2)).toBe(false);
    expect(sameOptions({ ...req, sae: true, sae_top_k: 4 }, o, 2)).toBe(true);
    expect(sameOptions({ ...req, sae: true, sae_top_k: 8 }, o, 2)).toBe(false);
  });
});
