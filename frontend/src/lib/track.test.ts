import { describe, expect, it } from 'vitest';
import { addTrackTokens, hasSeparator, MAX_TRACK_TOKENS, parseTrackTokens, trackTokenLabel } from './track';

const parsed = (text: string) => {
  const r = parseTrackTokens(text);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

describe('parseTrackTokens', () => {
  it('keeps a leading space: " Paris" is the word after a space', () => {
    expect(parsed(' Paris')).toEqual([' Paris']);
    expect(parsed('Paris')).toEqual(['Paris']);
    // After a comma the space is part of the next token; trailing spaces are dropped.
    expect(parsed('Paris, London ,Rome')).toEqual(['Paris', ' London', 'Rome']);
  });
  it('reads bare numbers as token ids, spaces around allowed', () => {
    expect(parsed('1234')).toEqual([1234]);
    expect(parsed(' Paris, 42 ,7')).toEqual([' Paris', 42, 7]);
    // Digits next to other text stay a string.
    expect(parsed('42nd, -3, 1.5')).toEqual(['42nd', ' -3', ' 1.5']);
  });
  it('reads a quoted part exactly, as a JSON string', () => {
    expect(parsed('" 42"')).toEqual([' 42']);
    expect(parsed('"\\n", " "')).toEqual(['\n', ' ']);
    expect(parseTrackTokens('"unterminated\\"')).toMatchObject({ ok: false });
    expect(parseTrackTokens('""')).toEqual({ ok: false, error: 'A quoted token cannot be empty' });
  });
  it('\\, is a comma inside a token; empty parts are skipped', () => {
    expect(parsed('a\\,b')).toEqual(['a,b']);
    expect(parsed('a\\\\,b')).toEqual(['a\\', 'b']);
    expect(parsed(' , ,x,')).toEqual(['x']);
    expect(parsed('')).toEqual([]);
    expect(hasSeparator('a\\,b')).toBe(false);
    expect(hasSeparator('a,b')).toBe(true);
  });
  it('refuses ids beyond safe integers', () => {
    expect(parseTrackTokens('99999999999999999999')).toMatchObject({ ok: false });
  });
});

describe('addTrackTokens', () => {
  it('appends each token once and keeps the server limit', () => {
    expect(addTrackTokens([' Paris'], [' Paris', 'Paris', 3])).toEqual({ ok: true, value: [' Paris', 'Paris', 3] });
    const full = Array.from({ length: MAX_TRACK_TOKENS }, (_, i) => i);
    expect(addTrackTokens(full, [0])).toEqual({ ok: true, value: full });
    const over = addTrackTokens(full, ['x']);
    expect(over.ok).toBe(false);
    if (!over.ok) expect(over.error).toContain('At most 16');
  });
  it('labels show spaces and ids visibly', () => {
    expect(trackTokenLabel(' Paris')).toBe('␣Paris');
    expect(trackTokenLabel(301)).toBe('#301');
    expect(trackTokenLabel('\n')).toBe('\\n');
  });
});
