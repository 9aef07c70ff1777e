// How tokens are shown: whitespace and control characters made visible, as one line.

const NAMED: Record<string, string> = {
  ' ': '␣',
  '\n': '\\n',
  '\t': '\\t',
  '\r': '\\r',
};

/**
 * Display form of a decoded token: spaces as ␣, newlines/tabs/CR as \n \t \r, other control
 * characters as \xNN, the empty string as ∅. Everything else is kept as is.
 */
export function formatToken(token: string | null | undefined): string {
  if (token == null || token === '') return '∅';
  let out = '';
  for (const ch of token) {
    const named = NAMED[ch];
    if (named !== undefined) {
      out += named;
      continue;
    }
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0)) {
      out += `\\x${code.toString(16).padStart(2, '0')}`;
    } else {
      out += ch;
    }
  }
  return out;
}

/** A token shortened to at most `max` characters (after formatting), with an ellipsis. */
export function shortToken(token: string, max: number): string {
  const f = formatToken(token);
  const chars = Array.from(f);
  if (chars.length <= max) return f;
  return `${chars.slice(0, Math.max(1, max - 1)).join('')}…`;
}

/** Probability as the grid shows it: two decimals. */
export function formatProb(p: number): string {
  if (!Number.isFinite(p)) return 'NaN';
  return p.toFixed(2);
}

/** Probability as a percentage with one decimal, as the original's tooltip. */
export function formatPercent(p: number): string {
  if (!Number.isFinite(p)) return 'NaN';
  return `${(p * 100).toFixed(1)}%`;
}
