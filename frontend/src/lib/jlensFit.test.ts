import { describe, expect, it } from 'vitest';
import { checkpointSettingsText, checkpointText, describeFitProgress, FIT_DEFAULTS, fitRequest, formatSeconds, resumeRequest } from './jlensFit';

const error = (patch: Partial<typeof FIT_DEFAULTS>) => {
  const r = fitRequest({ ...FIT_DEFAULTS, ...patch });
  return r.ok ? null : r.error;
};

describe('the fit form', () => {
  it('a corpus, with the server’s defaults', () => {
    expect(fitRequest({ ...FIT_DEFAULTS, corpus: 'one\n\ntwo\n' })).toEqual({ ok: true, value: { corpus: 'one\n\ntwo\n', max_seq_len: 128, skip_first: 16, dim_batch: 8 } });
  });

  it('sampled documents with their seed; max prompts when given', () => {
    expect(fitRequest({ ...FIT_DEFAULTS, source: 'sample', sample: '32', seed: '7', maxPrompts: '20', maxSeqLen: '64', skipFirst: '4', dimBatch: '16' })).toEqual({
      ok: true,
      value: { sample: 32, seed: 7, max_prompts: 20, max_seq_len: 64, skip_first: 4, dim_batch: 16 },
    });
  });

  it('says what is wrong', () => {
    expect(error({ corpus: '  \n ' })).toBe('Type or choose a corpus first: one document per line.');
    expect(error({ source: 'sample', sample: '0' })).toBe('The number of sampled documents must be a whole number of at least 1.');
    expect(error({ source: 'sample', seed: '-1' })).toBe('The seed must be a whole number of at least 0.');
    expect(error({ corpus: 'x', maxPrompts: '1.5' })).toBe('Max prompts must be a whole number of at least 1.');
    expect(error({ corpus: 'x', maxSeqLen: '1' })).toBe('Max sequence length must be a whole number of at least 2.');
    expect(error({ corpus: 'x', skipFirst: 'a' })).toBe('Skip first must be a whole number of at least 0.');
    expect(error({ corpus: 'x', maxSeqLen: '16', skipFirst: '16' })).toBe('Skip first (16) must be below the max sequence length (16): the positions after it are what the fit averages.');
    expect(error({ corpus: 'x', dimBatch: '0' })).toBe('Dim batch must be a whole number of at least 1.');
  });

  it('a checkpoint and a fit’s time in words', () => {
    expect(checkpointText({ n_done: 5, total: 12, next: 5, max_seq_len: 128, skip_first: 16, dim_batch: 8, corpus: '' })).toBe('5 of 12 prompts done');
    expect(checkpointText({ n_done: 0, total: 1, next: 0, max_seq_len: 128, skip_first: 16, dim_batch: 8, corpus: '' })).toBe('0 of 1 prompt done');
    expect(formatSeconds(3.21)).toBe('3.2 s');
    expect(formatSeconds(42.4)).toBe('42 s');
    expect(formatSeconds(125)).toBe('2 min 5 s');
    expect(formatSeconds(NaN)).toBe('—');
  });
});

describe('resuming a checkpoint', () => {
  const TEXT = { n_done: 5, total: 40, next: 5, max_seq_len: 64, skip_first: 4, dim_batch: 16, corpus: 'text of 40 documents, sha256 aabb' };
  it('with its own settings, on the form’s corpus', () => {
    expect(resumeRequest({ ...FIT_DEFAULTS, corpus: 'x\ny', maxPrompts: '40' }, TEXT)).toEqual({
      ok: true,
      value: { corpus: 'x\ny', max_prompts: 40, max_seq_len: 64, skip_first: 4, dim_batch: 16, resume: true },
    });
    expect(resumeRequest(FIT_DEFAULTS, TEXT)).toEqual({ ok: false, error: 'Resume continues the fit on the same corpus (text of 40 documents, sha256 aabb): type or choose it again.' });
    expect(checkpointSettingsText(TEXT)).toBe('text of 40 documents, sha256 aabb · max_seq_len 64 · skip_first 4 · dim_batch 16');
  });
  it('a sampled one on its sample, with its settings whatever the form says', () => {
    expect(resumeRequest({ ...FIT_DEFAULTS, dimBatch: '32' }, { n_done: 1, total: 2, next: 1, max_seq_len: 96, skip_first: 8, dim_batch: 4, corpus: '2 documents sampled from the model, seed 9' })).toEqual({
      ok: true,
      value: { sample: 2, seed: 9, max_seq_len: 96, skip_first: 8, dim_batch: 4, resume: true },
    });
  });
});

describe('a fit’s progress', () => {
  const shape = { hiddenSize: 64, dimBatch: 8 };
  const at = (done: number, total: number) => describeFitProgress({ request: 'f', stage: 'fitting', done, total }, shape, 'Starting…').text;
  it('says which prompt, from the passes per prompt (a forward and ⌈64 / 8⌉ backward)', () => {
    expect(at(0, 27)).toBe('Fitting prompt 1 of 3 (pass 0 of 27)');
    expect(at(10, 27)).toBe('Fitting prompt 2 of 3 (pass 10 of 27)');
    expect(at(27, 27)).toBe('Fitted 3 prompts: saving the lens…');
    // Counts that do not divide: passes only.
    expect(at(5, 26)).toBe('Fitting: pass 5 of 26');
    expect(describeFitProgress(null, shape, 'Starting…').text).toBe('Starting…');
    expect(describeFitProgress({ request: 'f', stage: 'sampling', done: 4, total: 16 }, shape, 'Starting…').text).toBe('Sampling the corpus: 4 of 16 tokens');
  });
});
