import { describe, expect, it } from 'vitest';
import { analysisCsv, analysisFileName, CSV_HEADER, csvField, METRICS, metricRange, metricRowNames } from './analysis';
import { analysisFixture } from '../test/fixtures';

const ROWS = ['Embeddings', 'Layer 0', 'Final Output'];

describe('analysis CSV', () => {
  it('one long table with the header metric,row_or_layer,name,position,token,value', () => {
    const csv = analysisCsv(analysisFixture(), ROWS, ['<s>', 'The', ' cat', '\n']);
    const lines = csv.split('\n');
    expect(lines[0]).toBe(CSV_HEADER);
    expect(CSV_HEADER).toBe('metric,row_or_layer,name,position,token,value');
    expect(csv.endsWith('\n')).toBe(true);
    // 3 row metrics × 3 rows × 4 positions + 2 layer metrics × 2 layers × 4 positions (counted
    // with tokens that hold no line break)
    expect(analysisCsv(analysisFixture(), ROWS, ['a', 'b', 'c', 'd']).split('\n').length - 2).toBe(3 * 3 * 4 + 2 * 2 * 4);
    expect(analysisCsv(analysisFixture(), ROWS, ['a', 'b', 'c', 'x,"y"'])).toContain('\nresid_norm,0,Embeddings,3,"x,""y""",13\n');
    expect(lines[1]).toBe('resid_norm,0,Embeddings,0,<s>,10');
    expect(lines[2]).toBe('resid_norm,0,Embeddings,1,The,11');
    // A token with a leading space is quoted, so the space survives; a newline token too.
    expect(lines[3]).toBe('resid_norm,0,Embeddings,2," cat",12');
    expect(csv).toContain('resid_norm,0,Embeddings,3,"\n",13');
    // cos_prev has no value in the first row.
    expect(csv).toContain('\ncos_prev,0,Embeddings,0,<s>,\n');
    expect(csv).toContain('\ncos_prev,1,Layer 0,1,The,0.6\n');
    expect(csv).toContain('\ncos_final,2,Final Output,0,<s>,1\n');
    // Layer metrics are named by layer.
    expect(csv).toContain('\nattn_out_norm,1,Layer 1,2," cat",1.2\n');
    expect(csv).toContain('\nmlp_out_norm,1,Layer 1,3,"\n",5\n');
    const metrics = new Set(lines.slice(1, -1).filter((l) => /^[a-z_]+,\d/.test(l)).map((l) => l.split(',')[0]));
    expect([...metrics]).toEqual(METRICS.map((m) => m.key));
  });

  it('escapes fields as RFC 4180 says', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField(' x')).toBe('" x"');
    expect(csvField('')).toBe('');
  });

  it('works without tokens', () => {
    const csv = analysisCsv(analysisFixture(), ROWS, null);
    expect(csv.split('\n')[1]).toBe('resid_norm,0,Embeddings,0,,10');
  });

  it('row names, ranges and the file name', () => {
    expect(metricRowNames(METRICS[0], 3, ROWS)).toEqual(ROWS);
    expect(metricRowNames(METRICS[3], 2, ROWS)).toEqual(['Layer 0', 'Layer 1']);
    expect(metricRowNames(METRICS[0], 4, ROWS)[3]).toBe('Row 3');
    expect(metricRange([[null, 2], [-1, Number.NaN]])).toEqual({ min: -1, max: 2 });
    expect(metricRange([[null]])).toEqual({ min: 0, max: 1 });
    expect(analysisFileName('SmolLM2-135M/Instruct', new Date(2025, 11, 3, 16, 28, 45))).toBe('activation_analysis_SmolLM2-135M_Instruct_20251203_162845.csv');
  });
});
