import { describe, expect, it } from 'vitest';
import { formatSessionTime, parseSessionTime, relativeSessionTime } from './time';

describe('session times', () => {
  it('formats the server timestamp', () => {
    expect(formatSessionTime('20251203_162845')).toBe('2025-12-03 16:28:45');
    expect(formatSessionTime('20261126_000001')).toBe('2026-11-26 00:00:01');
  });
  it('keeps unknown forms as they are', () => {
    expect(formatSessionTime('Unknown')).toBe('Unknown');
    expect(formatSessionTime('2025-12-03')).toBe('2025-12-03');
    expect(formatSessionTime('20251303_162845')).toBe('20251303_162845');
    expect(formatSessionTime('')).toBe('Unknown');
    expect(formatSessionTime(null)).toBe('Unknown');
  });
  it('parses to a local Date', () => {
    const d = parseSessionTime('20251203_162845')!;
    expect(d.getFullYear()).toBe(2025);
    expect(d.getMonth()).toBe(11);
    expect(d.getDate()).toBe(3);
    expect(d.getHours()).toBe(16);
    expect(parseSessionTime('nope')).toBeNull();
  });
  it('says how long ago', () => {
    const now = new Date(2025, 11, 3, 16, 30, 0);
    expect(relativeSessionTime('20251203_162945', now)).toBe('just now');
    expect(relativeSessionTime('20251203_162500', now)).toBe('5 min ago');
    expect(relativeSessionTime('20251203_133000', now)).toBe('3 h ago');
    expect(relativeSessionTime('20251202_163000', now)).toBe('1 day ago');
    expect(relativeSessionTime('20251129_163000', now)).toBe('4 days ago');
    expect(relativeSessionTime('Unknown', now)).toBe('');
  });
});
