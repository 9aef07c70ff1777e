import { describe, expect, it } from 'vitest';
import { ATTRIBUTION } from '../test/fixtures';
import { ATTRIBUTION_CSV_HEADER, attnBias, attributionCsv, attributionFileName, attributionTotal, headsMax, sumChecks, sumCheckText } from './attribution';

describe('direct logit attribution', () => {
  it('adds the parts up to the logit', () => {
    expect(attributionTotal(ATTRIBUTION)).toBe(2.75);
    expect(sumChecks(ATTRIBUTION)).toBe(true);
    expect(sumCheckText(ATTRIBUTION)).toBe('embed + Σattn + Σmlp + rest = 2.7500 vs logit 2.7500');
    const off = { ...ATTRIBUTION, logit: 3 };
    expect(sumChecks(off)).toBe(false);
    expect(sumCheckText(off, 2)).toBe('embed + Σattn + Σmlp + rest = 2.75 vs logit 3.00');
    // Float rounding over many layers is not a failure.
    expect(sumChecks({ ...ATTRIBUTION, logit: 2.7500004 })).toBe(true);
  });

  it('tells the attention output bias from the heads', () => {
    expect(attnBias(ATTRIBUTION, 0)).toBe(0);
    expect(attnBias({ ...ATTRIBUTION, attn: [1.125, -0.25] }, 0)).toBe(0.125);
  });

  it('scales the heads symmetrically around 0', () => {
    expect(headsMax(ATTRIBUTION)).toBe(0.625);
    expect(headsMax({ ...ATTRIBUTION, heads: [[0, 0]] })).toBe(1);
  });

  it('writes every part as CSV', () => {
    const lines = attributionCsv({ ...ATTRIBUTION, rest_parts: { final_norm_bias: 0.2, 'unembed,bias': 0.05 } }).split('\n');
    expect(lines).toEqual([
      ATTRIBUTION_CSV_HEADER,
      'embed,,,0.5',
      'attn,0,,1',
      'attn,1,,-0.25',
      'mlp,0,,0.75',
      'mlp,1,,0.5',
      'head,0,0,0.625',
      'head,0,1,0.375',
      'head,1,0,-0.5',
      'head,1,1,0.25',
      'rest,,,0.25',
      'rest:final_norm_bias,,,0.2',
      '"rest:unembed,bias",,,0.05',
      'logit,,,2.75',
      '',
    ]);
  });

  it('names its files', () => {
    expect(attributionFileName('llama', 12, new Date(2025, 0, 2, 3, 4, 5), 'png')).toBe('attribution_llama_pos12_20250102_030405.png');
  });
});
