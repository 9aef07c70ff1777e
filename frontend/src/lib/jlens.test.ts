import { describe, expect, it } from 'vitest';
import { buildJlensIntervention, isJlensOp, JLENS_OPS, jlensUnavailable, MAX_ABLATED, parseAlpha, type JlensFormValues } from './jlens';

const FORM: JlensFormValues = { op: 'jlens_steer', layer: '1', allLayers: false, tokenIndex: '', alpha: '2', token: ' Paris', tokens: null, source: null, target: null };
const CTX = { covered: [0, 1], numLayers: 3, seqLen: 5 };

describe('Jacobian lens interventions', () => {
  it('offers steer, ablate and swap, each explained', () => {
    expect(JLENS_OPS.map((o) => o.value)).toEqual(['jlens_steer', 'jlens_ablate', 'jlens_swap']);
    expect(isJlensOp('jlens_swap')).toBe(true);
    expect(isJlensOp('scale')).toBe(false);
  });

  it('builds each operation as the server takes it', () => {
    expect(buildJlensIntervention(FORM, CTX)).toEqual({ ok: true, value: { key: 'layer_1_output', config: { type: 'jlens_steer', token: ' Paris', alpha: 2, all_layers: false } } });
    expect(buildJlensIntervention({ ...FORM, op: 'jlens_ablate', tokens: [' Paris', 428], alpha: 'junk' }, CTX)).toEqual({
      ok: true,
      value: { key: 'layer_1_output', config: { type: 'jlens_ablate', tokens: [' Paris', 428], all_layers: false } },
    });
    expect(buildJlensIntervention({ ...FORM, op: 'jlens_swap', source: 428, target: ' is', alpha: '1.5', layer: '0', tokenIndex: '-1' }, CTX)).toEqual({
      ok: true,
      value: { key: 'layer_0_output', config: { type: 'jlens_swap', source: 428, target: ' is', alpha: 1.5, token_index: -1, all_layers: false } },
    });
    // Every layer the lens covers.
    expect(buildJlensIntervention({ ...FORM, allLayers: true, layer: '' }, CTX)).toEqual({
      ok: true,
      value: { key: 'all_layers_output', config: { type: 'jlens_steer', token: ' Paris', alpha: 2, all_layers: true } },
    });
    // A negative α steers away.
    expect(buildJlensIntervention({ ...FORM, alpha: '-3' }, CTX)).toMatchObject({ ok: true, value: { config: { alpha: -3 } } });
  });

  it('refuses in words what the server would refuse', () => {
    const error = (f: Partial<JlensFormValues>, ctx: Parameters<typeof buildJlensIntervention>[1] = CTX) => {
      const r = buildJlensIntervention({ ...FORM, ...f }, ctx);
      return r.ok ? null : r.error;
    };
    expect(error({}, { covered: null })).toMatch(/^Attach a Jacobian lens/);
    expect(error({ layer: '2' })).toBe('The Jacobian lens has no matrix for layer 2: it covers layers 0–1');
    expect(error({ token: null })).toMatch(/^Type the token to steer toward/);
    expect(error({ alpha: '' })).toMatch(/^α must be a number/);
    expect(error({ alpha: '0' })).toMatch(/^α 0 changes nothing/);
    expect(error({ op: 'jlens_ablate', tokens: [] })).toMatch(/^Type the tokens to ablate/);
    expect(error({ op: 'jlens_ablate', tokens: Array.from({ length: MAX_ABLATED + 1 }, (_, i) => i) })).toBe('At most 256 tokens can be ablated at once (this is 257)');
    expect(error({ op: 'jlens_swap', source: ' a', target: null })).toMatch(/^Type the two tokens to swap/);
    expect(error({ op: 'jlens_swap', source: 7, target: 7 })).toMatch(/same token/);
    expect(error({ tokenIndex: '9' })).toBe('Token index 9 is out of range for a 5-token input (valid: -5..4)');
    expect(error({ tokenIndex: 'x' })).toMatch(/is not an integer/);
  });

  it('α as typed', () => {
    expect(parseAlpha(' 2.5 ')).toEqual({ ok: true, value: 2.5 });
    expect(parseAlpha('1e400').ok).toBe(false);
    expect(jlensUnavailable([])).toMatch(/covers no layer/);
    expect(jlensUnavailable([0])).toBeNull();
  });
});
