// A text's tokens as chips with their positions (a long text: only how many there are), so that
// positions can be typed: the run's intervention fields, the patching texts.
import { formatToken } from '../lib/tokens';

interface Props {
  tokens: string[];
  label?: string;
  /** Positions to mark (where two texts differ). */
  marked?: ReadonlySet<number>;
  testId?: string;
}

export function TokenStrip({ tokens, label = 'Token positions', marked, testId }: Props) {
  if (tokens.length === 0) return null;
  return (
    <div className="token-strip" aria-label={label} data-testid={testId}>
      {tokens.length <= 80 ? (
        tokens.map((t, i) => (
          <span key={i} className={`token-chip${marked?.has(i) ? ' is-marked' : ''}`} title={`Token ${i} (${i - tokens.length}): ${JSON.stringify(t)}`}>
            <span className="token-chip-pos">{i}</span>
            {formatToken(t)}
          </span>
        ))
      ) : (
        <span className="muted small">
          {tokens.length} tokens (positions 0..{tokens.length - 1}, or -1 for the last)
        </span>
      )}
    </div>
  );
}
