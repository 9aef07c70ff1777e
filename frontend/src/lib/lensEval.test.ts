import { describe, expect, it } from 'vitest';
import { EVAL_REPORT, EVAL_REPORT_JACOBIAN, EVALUATION } from '../test/fixtures';
import { checkEvaluation, countDocuments, EVAL_CSV_HEADER, EVAL_METRICS, evalCsv, evalFileName, evalLines, parseEvalFile, parseMaxTokens } from './lensEval';

describe('lens evaluation files', () => {
  it('reads the CLI’s output and the server’s report', () => {
    const cli = parseEvalFile(JSON.stringify(EVALUATION, null, 2), 'eval.json');
    expect(cli).toEqual({ ok: true, value: EVALUATION });
    const report = parseEvalFile(JSON.stringify(EVAL_REPORT), 'report.json');
    expect(report).toEqual({ ok: true, value: EVAL_REPORT });
  });

  it('a logit-only evaluation has one line per chart; unknown fields are left out', () => {
    const { tuned: _tuned, ...logitOnly } = EVALUATION;
    const r = checkEvaluation({ ...logitOnly, tuned: null, extra: 1 });
    expect(r.ok && r.value).toEqual(logitOnly);
    expect(r.ok && evalLines(r.value).map((l) => l.lens)).toEqual(['logit']);
    expect(evalLines(EVALUATION).map((l) => l.lens)).toEqual(['logit', 'tuned']);
  });

  it('reads the Jacobian lens’s measures and file: a third line', () => {
    expect(parseEvalFile(JSON.stringify(EVAL_REPORT_JACOBIAN), 'report.json')).toEqual({ ok: true, value: EVAL_REPORT_JACOBIAN });
    expect(evalLines(EVAL_REPORT_JACOBIAN).map((l) => l.lens)).toEqual(['logit', 'tuned', 'jacobian']);
    // Without the tuned lens, the Jacobian lens's line follows the logit lens's.
    expect(evalLines({ ...EVAL_REPORT_JACOBIAN, tuned: null }).map((l) => l.lens)).toEqual(['logit', 'jacobian']);
    const bad = checkEvaluation({ ...EVAL_REPORT_JACOBIAN, jacobian: { ...EVAL_REPORT_JACOBIAN.jacobian, ce: [1] } });
    expect(bad.ok ? 'ok' : bad.error).toBe('“jacobian.ce” has 1 value, but there are 4 rows');
    const lines = evalCsv(EVAL_REPORT_JACOBIAN).split('\n');
    expect(lines).toHaveLength(1 + 3 * 4 + 1);
    expect(lines[10]).toBe('jacobian,1,Layer 0,0.4127,6.9512,5.4981,0.2109375');
  });

  it('a value the server wrote as null (NaN) is a gap', () => {
    const r = checkEvaluation({ ...EVALUATION, logit: { ...EVALUATION.logit, ce: [7, 7, null, 7] } });
    expect(r.ok && r.value.logit.ce[2]).toBeNaN();
  });

  it('says what is wrong with a file that is not one', () => {
    const bad = (v: unknown) => {
      const r = parseEvalFile(typeof v === 'string' ? v : JSON.stringify(v), 'x.json');
      return r.ok ? 'ok' : r.error;
    };
    expect(bad('{nope')).toMatch(/^x\.json is not JSON \(.+\)\. Open the output of “logitlens eval-lens --json”/);
    expect(bad([1, 2])).toBe('x.json is not a lens evaluation: it is not a JSON object. Open the output of “logitlens eval-lens --json”, or a lens evaluation of the server.');
    expect(bad({ ...EVALUATION, layers: undefined })).toMatch(/“layers” is missing or not a list of row names/);
    expect(bad({ ...EVALUATION, tokens: 'many' })).toMatch(/“tokens” is missing or not a count/);
    expect(bad({ ...EVALUATION, logit: undefined })).toMatch(/“logit” is missing or not an object of measures/);
    expect(bad({ ...EVALUATION, tuned: { ...EVALUATION.tuned, kl: [1, 2, 3] } })).toMatch(/“tuned\.kl” has 3 values, but there are 4 rows/);
    expect(bad({ ...EVALUATION, logit: { ...EVALUATION.logit, entropy: [1, '2', 3, 4] } })).toMatch(/“logit\.entropy\[1\]” is not a number/);
    expect(bad({ ...EVALUATION, logit: { ...EVALUATION.logit, top1_agree: undefined } })).toMatch(/“logit\.top1_agree” is missing or not a list/);
    expect(bad({ ...EVAL_REPORT, documents: -1 })).toMatch(/“documents” is not a count/);
    expect(bad({ ...EVAL_REPORT, model_name: 3 })).toMatch(/“model_name” is not a string/);
    // A lens-grid session or an activation CSV is not an evaluation either.
    expect(bad({ text: 'x', logit_lens: [] })).toMatch(/“layers” is missing/);
  });
});

describe('lens evaluation exports', () => {
  it('writes one CSV line per lens and row', () => {
    const lines = evalCsv(EVALUATION).split('\n');
    expect(lines[0]).toBe(EVAL_CSV_HEADER);
    expect(lines).toHaveLength(1 + 2 * 4 + 1);
    expect(lines[1]).toBe('logit,0,Embeddings,1.3741695648768284,7.05549462888112,5.523645314640676,0.00625');
    expect(lines[8]).toBe('tuned,3,Final Output,0,6.9921168718177755,5.510375392391771,1');
    expect(lines[9]).toBe('');
    const gap = evalCsv({ ...EVALUATION, tuned: undefined, logit: { ...EVALUATION.logit, ce: [NaN, 1, 1, 1] } }).split('\n');
    expect(gap[1]).toBe('logit,0,Embeddings,1.3741695648768284,,5.523645314640676,0.00625');
  });

  it('names the files after the model', () => {
    expect(evalFileName('llama', new Date(2026, 10, 30, 9, 5, 7), 'csv')).toBe('lens_quality_llama_20261130_090507.csv');
    expect(evalFileName('', new Date(2026, 10, 30, 9, 5, 7), 'svg')).toBe('lens_quality_evaluation_20261130_090507.svg');
  });

  it('every measure has a title; KL offers a log scale, top-1 agreement is a percentage', () => {
    expect(EVAL_METRICS.map((m) => m.key)).toEqual(['kl', 'ce', 'entropy', 'top1_agree']);
    expect(EVAL_METRICS.filter((m) => m.log).map((m) => m.key)).toEqual(['kl']);
    expect(EVAL_METRICS.filter((m) => m.percent).map((m) => m.key)).toEqual(['top1_agree']);
  });
});

describe('the evaluation form', () => {
  it('counts documents as the server does: a line each, blank lines skipped', () => {
    expect(countDocuments('')).toBe(0);
    expect(countDocuments('one\n\n  \ntwo\r\nthree\n')).toBe(3);
  });

  it('max tokens is a whole number of at least 1', () => {
    expect(parseMaxTokens(' 128 ')).toEqual({ ok: true, value: 128 });
    for (const bad of ['', '0', '1.5', '-3', 'abc']) expect(parseMaxTokens(bad).ok).toBe(false);
  });
});
