import { describe, expect, it } from 'vitest';
import { formatPercent, formatProb, formatToken, shortToken } from './tokens';

describe('formatToken', () => {
  it('shows spaces as ␣, including a leading space', () => {
    expect(formatToken(' c')).toBe('␣c');
    expect(formatToken(' of')).toBe('␣of');
    expect(formatToken(' ')).toBe('␣');
    expect(formatToken('a b')).toBe('a␣b');
  });
  it('escapes newlines, tabs and carriage returns', () => {
    expect(formatToken('\n')).toBe('\\n');
    expect(formatToken('\n\n')).toBe('\\n\\n');
    expect(formatToken('\t')).toBe('\\t');
    expect(formatToken('\r\n')).toBe('\\r\\n');
  });
  it('escapes other control characters as \\xNN', () => {
    expect(formatToken('\x14')).toBe('\\x14');
    expect(formatToken('\x00')).toBe('\\x00');
    expect(formatToken('\x7f')).toBe('\\x7f');
  });
  it('marks the empty token', () => {
    expect(formatToken('')).toBe('∅');
    expect(formatToken(undefined)).toBe('∅');
  });
  it('keeps ordinary text, special tokens and replacement characters', () => {
    expect(formatToken('Paris')).toBe('Paris');
    expect(formatToken('<|im_start|>')).toBe('<|im_start|>');
    expect(formatToken('�')).toBe('�');
    expect(formatToken('日本')).toBe('日本');
  });
  it('matches the e2e expectation for the tiny llama prompt', () => {
    const toks = ['<s>', 'T', 'he', ' c', 'ap', 'it', 'al', ' of', ' F', 'ran', 'c', 'e', ' is'];
    expect(toks.map(formatToken).join(' ')).toBe('<s> T he ␣c ap it al ␣of ␣F ran c e ␣is');
  });
});

describe('shortToken and probabilities', () => {
  it('shortens after formatting', () => {
    expect(shortToken(' visualization', 6)).toBe('␣visu…');
    expect(shortToken('ab', 6)).toBe('ab');
  });
  it('formats probabilities', () => {
    expect(formatProb(0.12345)).toBe('0.12');
    expect(formatProb(1)).toBe('1.00');
    expect(formatPercent(0.7734)).toBe('77.3%');
    expect(formatProb(Number.NaN)).toBe('NaN');
  });
});
