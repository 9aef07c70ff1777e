import { describe, expect, it } from 'vitest';
import type { Interventions } from '../api/types';
import {
  addStreamIntervention,
  appendIntervention,
  blockedMasks,
  buildAttentionIntervention,
  buildStreamIntervention,
  describeIntervention,
  describeKey,
  interventionWarning,
  normalizeInterventions,
  parseTokenList,
  parseVector,
  removeIntervention,
  streamKey,
  unionMasks,
  type StreamFormValues,
} from './interventions';

const form = (patch: Partial<StreamFormValues> = {}): StreamFormValues => ({
  layer: '1',
  location: 'output',
  op: 'zero',
  value: '0.5',
  vector: '',
  tokenIndex: '',
  allLayers: false,
  ...patch,
});

describe('stream keys', () => {
  it('builds the original key forms', () => {
    expect(streamKey(3, 'output', false)).toBe('layer_3_output');
    expect(streamKey(5, 'mlp_output', false)).toBe('layer_5_mlp_output');
    expect(streamKey(0, 'attn_output', true)).toBe('all_layers_attn_output');
    expect(streamKey('embeddings', 'output', false)).toBe('embeddings');
    expect(streamKey(2, 'embeddings', true)).toBe('embeddings');
  });
});

describe('buildStreamIntervention', () => {
  it('zero at a layer, all tokens', () => {
    const r = buildStreamIntervention(form(), { numLayers: 3 });
    expect(r).toEqual({ ok: true, value: { key: 'layer_1_output', config: { type: 'zero', all_layers: false } } });
  });
  it('scale with a value and a negative token index', () => {
    const r = buildStreamIntervention(form({ op: 'scale', value: '0.5', tokenIndex: '-1', location: 'mlp_output', layer: '2' }), { numLayers: 3, seqLen: 13 });
    expect(r).toEqual({ ok: true, value: { key: 'layer_2_mlp_output', config: { type: 'scale', value: 0.5, token_index: -1, all_layers: false } } });
  });
  it('all layers', () => {
    const r = buildStreamIntervention(form({ allLayers: true, location: 'attn_output' }));
    expect(r.ok && r.value.key).toBe('all_layers_attn_output');
    expect(r.ok && r.value.config.all_layers).toBe(true);
  });
  it('embeddings via the layer select or the stream select', () => {
    const a = buildStreamIntervention(form({ layer: 'embeddings' }));
    const b = buildStreamIntervention(form({ location: 'embeddings', allLayers: true }));
    expect(a.ok && a.value.key).toBe('embeddings');
    expect(b.ok && b.value.key).toBe('embeddings');
    expect(b.ok && b.value.config.all_layers).toBe(false);
  });
  it('add broadcasts a single number to the hidden size', () => {
    const r = buildStreamIntervention(form({ op: 'add', vector: '0.25' }), { hiddenSize: 4 });
    expect(r.ok && r.value.config.vector).toEqual([0.25, 0.25, 0.25, 0.25]);
  });
  it('add takes a full vector and checks its length', () => {
    const r = buildStreamIntervention(form({ op: 'add', vector: '1, 2, 3, 4' }), { hiddenSize: 4 });
    expect(r.ok && r.value.config.vector).toEqual([1, 2, 3, 4]);
    const bad = buildStreamIntervention(form({ op: 'add', vector: '1, 2, 3' }), { hiddenSize: 4 });
    expect(bad).toEqual({ ok: false, error: expect.stringMatching(/3 numbers.*hidden size is 4/) });
  });
  it('rejects bad input with a message', () => {
    expect(buildStreamIntervention(form({ op: 'scale', value: '' })).ok).toBe(false);
    expect(buildStreamIntervention(form({ op: 'scale', value: 'abc' })).ok).toBe(false);
    expect(buildStreamIntervention(form({ tokenIndex: '1.5' }))).toEqual({ ok: false, error: expect.stringMatching(/not an integer/) });
    expect(buildStreamIntervention(form({ tokenIndex: '13' }), { seqLen: 13 })).toEqual({ ok: false, error: expect.stringMatching(/out of range.*-13\.\.12/) });
    expect(buildStreamIntervention(form({ tokenIndex: '-14' }), { seqLen: 13 }).ok).toBe(false);
    expect(buildStreamIntervention(form({ tokenIndex: '-13' }), { seqLen: 13 }).ok).toBe(true);
    expect(buildStreamIntervention(form({ layer: '3' }), { numLayers: 3 })).toEqual({ ok: false, error: expect.stringMatching(/3 layers \(0\.\.2\)/) });
    expect(buildStreamIntervention(form({ op: 'add', vector: '' }), { hiddenSize: 4 }).ok).toBe(false);
    expect(buildStreamIntervention(form({ op: 'add', vector: '1, x' }), { hiddenSize: 4 })).toEqual({ ok: false, error: expect.stringMatching(/"x"/) });
  });
  it('after a generation, the positions it writes are valid too; negative ones still count from the prompt’s end', () => {
    const ctx = { seqLen: 13, newTokens: 8 };
    expect(buildStreamIntervention(form({ tokenIndex: '20' }), ctx).ok).toBe(true);
    expect(buildStreamIntervention(form({ tokenIndex: '21' }), ctx)).toEqual({ ok: false, error: 'Token index 21 is out of range for a 13-token prompt and 8 new tokens (valid: -13..20)' });
    expect(buildStreamIntervention(form({ tokenIndex: '-14' }), ctx).ok).toBe(false);
    expect(interventionWarning('layer_1_output', { type: 'zero', token_index: 15 }, { numLayers: 3, ...ctx })).toBeNull();
  });
  it('a single number needs the hidden size', () => {
    expect(parseVector('0.5').ok).toBe(false);
    expect(parseVector('[1, 2]', 2)).toEqual({ ok: true, value: [1, 2] });
    expect(parseVector('1 2\n3', 3)).toEqual({ ok: true, value: [1, 2, 3] });
  });
});

describe('replacement rule', () => {
  it('replaces a stream config at the same token index of the same key', () => {
    let iv: Interventions = {};
    iv = addStreamIntervention(iv, 'layer_1_output', { type: 'zero', all_layers: false });
    iv = addStreamIntervention(iv, 'layer_1_output', { type: 'scale', value: 2, token_index: 3, all_layers: false });
    iv = addStreamIntervention(iv, 'layer_1_output', { type: 'scale', value: 0.5, all_layers: false });
    expect(iv.layer_1_output).toEqual([
      { type: 'scale', value: 2, token_index: 3, all_layers: false },
      { type: 'scale', value: 0.5, all_layers: false },
    ]);
    iv = addStreamIntervention(iv, 'layer_1_output', { type: 'zero', token_index: 3, all_layers: false });
    expect(iv.layer_1_output.map(describeIntervention)).toEqual(['scale(0.5)', 'zero @ Token 3']);
  });
  it('keeps other keys and null vs undefined token indices alike', () => {
    let iv: Interventions = { layer_0_output: [{ type: 'zero', token_index: null }] };
    iv = addStreamIntervention(iv, 'layer_0_output', { type: 'scale', value: 3 });
    iv = addStreamIntervention(iv, 'layer_2_output', { type: 'zero' });
    expect(iv).toEqual({ layer_0_output: [{ type: 'scale', value: 3 }], layer_2_output: [{ type: 'zero' }] });
  });
  it('attention blocks are appended, duplicates allowed', () => {
    const c = { type: 'block_attention', source_tokens: [0], target_tokens: [3], all_layers: false };
    let iv: Interventions = {};
    iv = appendIntervention(iv, 'layer_0_attention', c);
    iv = appendIntervention(iv, 'layer_0_attention', c);
    expect(iv.layer_0_attention).toHaveLength(2);
  });
  it('removing the last config removes the key', () => {
    const iv: Interventions = { a: [{ type: 'zero' }, { type: 'zero', token_index: 1 }], b: [{ type: 'zero' }] };
    expect(removeIntervention(iv, 'a', 0)).toEqual({ a: [{ type: 'zero', token_index: 1 }], b: [{ type: 'zero' }] });
    expect(removeIntervention(iv, 'b', 0)).toEqual({ a: iv.a });
    expect(removeIntervention(iv, 'missing', 0)).toBe(iv);
  });
});

describe('attention interventions', () => {
  const af = (source: string, target: string, allLayers = false, layer = '0') => ({ layer, source, target, allLayers });
  it('builds a layer key', () => {
    expect(buildAttentionIntervention(af('0', '3'), { numLayers: 3, seqLen: 13 })).toEqual({
      ok: true,
      value: { key: 'layer_0_attention', config: { type: 'block_attention', source_tokens: [0], target_tokens: [3], all_layers: false } },
    });
  });
  it('builds the all-layers key with every position', () => {
    const r = buildAttentionIntervention(af('0', '2, 3', true));
    expect(r.ok && r.value.key).toBe('all_layers_attention_0_to_2_3');
    expect(r.ok && r.value.config.all_layers).toBe(true);
  });
  it('validates', () => {
    expect(buildAttentionIntervention(af('', '3'))).toEqual({ ok: false, error: expect.stringMatching(/source tokens/) });
    expect(buildAttentionIntervention(af('0', ' , '))).toEqual({ ok: false, error: expect.stringMatching(/target tokens/) });
    expect(buildAttentionIntervention(af('a', '3'))).toEqual({ ok: false, error: expect.stringMatching(/"a".*not an integer/) });
    expect(buildAttentionIntervention(af('1.5', '3')).ok).toBe(false);
    expect(buildAttentionIntervention(af('4', '3'))).toEqual({ ok: false, error: expect.stringMatching(/source ≤ target/) });
    expect(buildAttentionIntervention(af('3', '3')).ok).toBe(true);
    expect(buildAttentionIntervention(af('0', '13'), { seqLen: 13 })).toEqual({ ok: false, error: expect.stringMatching(/Target token 13 is out of range/) });
    expect(buildAttentionIntervention(af('0', '3', false, '5'), { numLayers: 3 }).ok).toBe(false);
  });
  it('resolves negative positions with the known length', () => {
    expect(buildAttentionIntervention(af('-1', '3'), { seqLen: 13 }).ok).toBe(false); // 12 > 3
    expect(buildAttentionIntervention(af('2', '-1'), { seqLen: 13 }).ok).toBe(true);
    expect(buildAttentionIntervention(af('2', '-1')).ok).toBe(true); // unknown length: the server checks
    expect(buildAttentionIntervention(af('-1', '-2')).ok).toBe(false);
  });
  it('parseTokenList', () => {
    expect(parseTokenList('1, 2,3', 'x')).toEqual({ ok: true, value: [1, 2, 3] });
    expect(parseTokenList('1,,2', 'x')).toEqual({ ok: true, value: [1, 2] });
  });
});

describe('display', () => {
  it('renders configs as the original does', () => {
    expect(describeIntervention({ type: 'scale', value: 0.5, token_index: -1, all_layers: true })).toBe('scale(0.5) @ Token -1 [ALL LAYERS]');
    expect(describeIntervention({ type: 'block_attention', source_tokens: [0], target_tokens: [3], all_layers: false })).toBe('block_attention (0 → 3)');
    expect(describeIntervention({ type: 'block_attention', source_tokens: [1, 2], target_tokens: [4, 5], all_layers: true })).toBe('block_attention (1,2 → 4,5) [ALL LAYERS]');
    expect(describeIntervention({ type: 'zero' })).toBe('zero');
    expect(describeIntervention({ type: 'add', vector: [0.5, 0.5, 0.5] })).toBe('add(0.5 ×3)');
    expect(describeIntervention({ type: 'add', vector: [1, 2, 3, 4] })).toBe('add([1, 2, 3, …] d=4)');
  });
  it('renders the Jacobian lens’s operations with their tokens and α', () => {
    expect(describeIntervention({ type: 'jlens_steer', token: ' is', alpha: 2, all_layers: false })).toBe('jlens_steer(␣is, α 2)');
    expect(describeIntervention({ type: 'jlens_ablate', tokens: [' Paris', 428], token_index: -1 })).toBe('jlens_ablate(␣Paris, #428) @ Token -1');
    expect(describeIntervention({ type: 'jlens_swap', source: 428, target: ' is', alpha: 1.5, all_layers: true })).toBe('jlens_swap(#428 ⇄ ␣is, α 1.5) [EVERY LAYER THE LENS COVERS]');
  });
  it('describes keys', () => {
    expect(describeKey('layer_3_mlp_output')).toBe('Layer 3 · MLP output');
    expect(describeKey('all_layers_output')).toBe('All layers · block output');
    expect(describeKey('layer_0_attention')).toBe('Layer 0 · attention');
    expect(describeKey('all_layers_attention_0_to_3')).toBe('All layers · attention');
    expect(describeKey('embeddings')).toBe('Embeddings');
    expect(describeKey('weird')).toBe('weird');
  });
  it('warns about interventions that do not fit the model or input', () => {
    expect(interventionWarning('layer_5_output', { type: 'zero' }, { numLayers: 3 })).toMatch(/layer 5/);
    expect(interventionWarning('layer_1_output', { type: 'zero', token_index: 20 }, { numLayers: 3, seqLen: 13 })).toMatch(/out of range/);
    expect(interventionWarning('layer_1_output', { type: 'add', vector: [1, 2] }, { hiddenSize: 64 })).toMatch(/64/);
    expect(interventionWarning('layer_1_output', { type: 'zero' }, { numLayers: 3 })).toBeNull();
  });
  it('warns about a Jacobian lens operation without the lens, or at a layer it does not cover', () => {
    const steer = { type: 'jlens_steer', token: ' is', alpha: 2 };
    expect(interventionWarning('layer_1_output', steer, { numLayers: 3, jlensLayers: null })).toBe('it reads its directions from a Jacobian lens, and none is attached');
    expect(interventionWarning('layer_2_output', steer, { numLayers: 3, jlensLayers: [0, 1] })).toBe('the Jacobian lens attached has no matrix for layer 2 (it covers 0, 1)');
    expect(interventionWarning('layer_1_output', steer, { numLayers: 3, jlensLayers: [0, 1] })).toBeNull();
    expect(interventionWarning('all_layers_output', steer, { numLayers: 3, jlensLayers: [0, 1] })).toBeNull();
    // Not known yet (no model): nothing said.
    expect(interventionWarning('layer_1_output', steer, {})).toBeNull();
    // Other operations do not need the lens.
    expect(interventionWarning('layer_2_output', { type: 'zero' }, { numLayers: 3, jlensLayers: null })).toBeNull();
  });
});

describe('normalizeInterventions (session configs)', () => {
  it('keeps the Jacobian lens’s tokens and α', () => {
    const raw = {
      layer_1_output: [
        { type: 'jlens_steer', token: ' is', alpha: 2, value: null, vector: null, token_index: null, all_layers: false },
        { type: 'jlens_ablate', tokens: [' is', 428, null], all_layers: false },
        { type: 'jlens_swap', source: 428, target: ' is', alpha: 1, token_index: -1 },
      ],
    };
    expect(normalizeInterventions(raw)).toEqual({
      layer_1_output: [
        { type: 'jlens_steer', token: ' is', alpha: 2, all_layers: false },
        { type: 'jlens_ablate', tokens: [' is', 428], all_layers: false },
        { type: 'jlens_swap', source: 428, target: ' is', alpha: 1, token_index: -1 },
      ],
    });
  });

  it('wraps single objects, drops nulls and junk', () => {
    const raw = {
      layer_3_output: { type: 'zero', value: 0, vector: null, token_index: null, source_tokens: null, target_tokens: null, all_layers: false },
      layer_0_attention: [{ type: 'block_attention', value: 0, source_tokens: [0], target_tokens: [3], all_layers: null }],
      junk: [null, 5, { nope: 1 }],
      layer_1_mlp_output: [{ type: 'scale', value: 0.5, token_index: -1 }],
    };
    expect(normalizeInterventions(raw)).toEqual({
      layer_3_output: [{ type: 'zero', all_layers: false }],
      layer_0_attention: [{ type: 'block_attention', source_tokens: [0], target_tokens: [3] }],
      layer_1_mlp_output: [{ type: 'scale', value: 0.5, token_index: -1 }],
    });
    expect(normalizeInterventions(undefined)).toEqual({});
    expect(normalizeInterventions([1, 2])).toEqual({});
  });
});

describe('blocked masks', () => {
  it('marks query (target) × key (source) at the right layers', () => {
    const iv: Interventions = {
      layer_0_attention: [{ type: 'block_attention', source_tokens: [0], target_tokens: [3] }],
      layer_1_output: [{ type: 'zero' }],
    };
    const masks = blockedMasks(iv, 3, 5);
    expect(masks[1]).toBeNull();
    expect(masks[2]).toBeNull();
    expect(Array.from(masks[0]!).reduce((a, b) => a + b, 0)).toBe(1);
    expect(masks[0]![3 * 5 + 0]).toBe(1);
  });
  it('all-layer keys, all_layers flags and negative indices', () => {
    const iv: Interventions = {
      all_layers_attention_1_to_4: [{ type: 'block_attention', source_tokens: [1], target_tokens: [-1], all_layers: true }],
      layer_1_attention: [{ type: 'block_attention', source_tokens: [0], target_tokens: [2], all_layers: true }],
      layer_9_attention: [{ type: 'block_attention', source_tokens: [0], target_tokens: [2] }],
    };
    const masks = blockedMasks(iv, 2, 5);
    for (const l of [0, 1]) {
      expect(masks[l]![4 * 5 + 1]).toBe(1);
      expect(masks[l]![2 * 5 + 0]).toBe(1);
    }
    const u = unionMasks(masks, [0, 1])!;
    expect(u[4 * 5 + 1]).toBe(2); // blocked at both layers
    expect(u.reduce((a, b) => a + (b > 0 ? 1 : 0), 0)).toBe(2);
    const partial = unionMasks([masks[0], null], [0, 1])!;
    expect(partial[4 * 5 + 1]).toBe(1);
    expect(unionMasks([null, null], [0, 1])).toBeNull();
  });
  it('a generation’s negative indices count back from its prompt’s end, not from the last written token', () => {
    const iv: Interventions = { layer_0_attention: [{ type: 'block_attention', source_tokens: [0], target_tokens: [-1, 5] }] };
    // A 4-token prompt and 3 written: -1 is position 3; 5, a written one, is blocked once written.
    const masks = blockedMasks(iv, 1, 7, 4);
    expect(masks[0]![3 * 7 + 0]).toBe(1);
    expect(masks[0]![5 * 7 + 0]).toBe(1);
    expect(masks[0]![6 * 7 + 0]).toBe(0);
  });
});
