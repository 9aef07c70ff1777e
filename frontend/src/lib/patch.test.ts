import { describe, expect, it } from 'vitest';
import { PATCH_RESPONSE } from '../test/fixtures';
import {
  bestCell,
  columnLabel,
  countMismatch,
  metricLabel,
  parsePositions,
  PATCH_CSV_HEADER,
  PATCH_HOOKS,
  patchCsv,
  patchFileName,
  positionsError,
  scaleMax,
} from './patch';
import { parseOneToken, severalTokensError } from './track';

describe('the patching form', () => {
  it('offers the five hooks, each explained', () => {
    expect(PATCH_HOOKS.map((h) => h.value)).toEqual(['resid_pre', 'resid_mid', 'attn_out', 'mlp_out', 'resid_post']);
    for (const h of PATCH_HOOKS) expect(h.help.length).toBeGreaterThan(10);
  });

  it('reads a metric token as a tracked token is read, but only one', () => {
    expect(parseOneToken(' Paris', 'correct')).toEqual({ ok: true, value: ' Paris' });
    expect(parseOneToken(' 1234 ', 'correct')).toEqual({ ok: true, value: 1234 });
    expect(parseOneToken('"\\n"', 'correct')).toEqual({ ok: true, value: '\n' });
    expect(parseOneToken('a\\,b', 'correct')).toEqual({ ok: true, value: 'a,b' });
    expect(parseOneToken('  ', 'wrong')).toEqual({ ok: false, error: 'Type the wrong token: a token string (␣Paris is " Paris") or a token id.' });
    expect(parseOneToken(' Paris, Rome', 'correct')).toEqual({ ok: false, error: 'The correct token is one token: drop the comma (\\, is a comma inside a token).' });
    expect(parseOneToken('"unclosed', 'correct').ok).toBe(true);
    expect(parseOneToken('"\\x"', 'correct')).toMatchObject({ ok: false, error: expect.stringMatching(/not a valid quoted string/) });
  });

  it('says the pieces of a string that is several tokens', () => {
    expect(severalTokensError(' Paris', [' Paris'])).toBeNull();
    expect(severalTokensError(' Parisian', [' Par', 'isian'])).toBe('“␣Parisian” is 2 tokens (␣Par · isian): the metric needs a single token.');
    expect(severalTokensError('', [])).toBe('“∅” is no token at all.');
  });

  it('reads positions, negative from the end, and checks them against the text', () => {
    expect(parsePositions('0, 3 -1')).toEqual({ ok: true, value: [0, 3, -1] });
    expect(parsePositions(' , ')).toMatchObject({ ok: false });
    expect(parsePositions('2, x')).toEqual({ ok: false, error: '“x” is not a position: positions are whole numbers, negative from the end (-1 is the last token).' });
    expect(positionsError([0, 12, -13], 13)).toBeNull();
    expect(positionsError([0, 13], 13)).toBe('Position 13 is outside the text: it has 13 tokens (0 to 12, or -13 to -1).');
    expect(positionsError([-14], 13)).toMatch(/^Position -14 is outside/);
  });

  it('says plainly when the texts do not pair up', () => {
    expect(countMismatch(6, 6)).toBeNull();
    expect(countMismatch(13, 15)).toBe(
      'The clean text is 13 tokens and the corrupted text 15: patching needs the same number of tokens in both, so that each position has its counterpart.',
    );
  });
});

describe('a sweep’s result', () => {
  it('names its metric', () => {
    expect(metricLabel(PATCH_RESPONSE.metric)).toBe('logit difference ␣sat − ␣ran');
    expect(metricLabel({ type: 'prob', token: 5, token_text: ' Paris' })).toBe('probability of ␣Paris');
  });

  it('scales its colours around 0: −1..1 normalized, ± the largest |value| raw', () => {
    expect(scaleMax(PATCH_RESPONSE, 'normalized')).toBe(1);
    expect(scaleMax(PATCH_RESPONSE, 'raw')).toBe(2);
    expect(scaleMax({ ...PATCH_RESPONSE, values: [[0, 0]] }, 'raw')).toBe(1);
  });

  it('finds the most useful cell, skipping cells without a value', () => {
    expect(bestCell(PATCH_RESPONSE.normalized)).toEqual({ layer: 0, col: 2 });
    expect(bestCell([[null, -0.5], [-0.2, null]])).toEqual({ layer: 1, col: 0 });
    expect(bestCell([[null]])).toBeNull();
  });

  it('labels a column by its token, or both where the texts differ', () => {
    expect(columnLabel(PATCH_RESPONSE, 1)).toBe('The');
    expect(columnLabel(PATCH_RESPONSE, 2)).toBe('␣cat/␣dog');
    expect(columnLabel({ ...PATCH_RESPONSE, positions: [3] }, 0)).toBe('␣is');
  });

  it('writes a CSV line per layer and position', () => {
    const lines = patchCsv({ ...PATCH_RESPONSE, tokens_corrupted: ['<s>', 'The', ' "dog", no', ' is'], normalized: [[0, 0, 1, 0], [0, 0, null, 0.4]] }).split('\n');
    expect(lines[0]).toBe(PATCH_CSV_HEADER);
    expect(lines).toHaveLength(1 + 8 + 1);
    expect(lines[1]).toBe('0,0,<s>,<s>,-1,0');
    expect(lines[3]).toBe('0,2," cat"," ""dog"", no",2,1');
    expect(lines[7]).toBe('1,2," cat"," ""dog"", no",0.5,');
    expect(lines[9]).toBe('');
  });

  it('names its files', () => {
    expect(patchFileName('tiny llama', 'attn_out', new Date(2025, 0, 2, 3, 4, 5), 'csv')).toBe('patching_tiny_llama_attn_out_20250102_030405.csv');
  });
});
