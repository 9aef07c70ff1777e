// The prompt history: the tab's runs, newest first, each shown again with a click (as it was
// answered, nothing recomputed), removed, or picked as A or B of a comparison.
import { useId } from 'react';
import type { RunHistoryState } from '../hooks/useRunHistory';
import { formatBytes } from '../lib/models';
import { promptLine, runFacts } from '../lib/runHistory';
import { formatClock } from '../lib/time';

export function RunHistoryCard({ h }: { h: RunHistoryState }) {
  const uid = useId();
  const { entries, limits } = h;
  if (entries.length === 0) return null;
  return (
    <section className="card history-card" aria-label="Prompt history" data-testid="run-history">
      <div className="section-head">
        <h2>History</h2>
        <span className="muted small" data-testid="history-count">
          {entries.length} of at most {limits.maxRuns} runs
        </span>
        <button type="button" className="btn btn-small btn-ghost-danger history-clear" onClick={h.clear}>
          Clear history
        </button>
      </div>
      <p className="muted small history-note" data-testid="history-note">
        The runs of this tab, newest first, kept in its memory only: a reload forgets them. The last {limits.maxRuns} are kept; the attention of older runs is let go
        beyond {formatBytes(limits.attentionBytes)}, and the oldest runs beyond {formatBytes(limits.rowsBytes)} of lens rows. Click a prompt to show its grid again.
      </p>
      <div className="history-scroll">
        <table className="history-table">
          <caption className="sr-only">Runs of this tab, newest first</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">Prompt</th>
              <th scope="col" title="The run compared against (the baseline of the Δ)">
                A
              </th>
              <th scope="col" title="The run compared">
                B
              </th>
              <th scope="col">
                <span className="sr-only">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => {
              const text = e.view.request.text;
              const onScreen = h.shownId === e.id;
              return (
                <tr key={e.id} data-history-id={e.id} className={onScreen ? 'is-shown' : undefined} aria-current={onScreen ? 'true' : undefined}>
                  <td className="history-num">#{e.id}</td>
                  <td className="history-time">{formatClock(e.at)}</td>
                  <td className="history-prompt">
                    <button type="button" className="link-btn history-show" onClick={() => h.show(e.id)} title={text} aria-label={`Show run #${e.id} again: ${promptLine(text, 200)}`}>
                      {promptLine(text)}
                    </button>
                    {onScreen && <span className="tag tag-session">on screen</span>}
                    {e.view.source.kind === 'session' && (
                      <span className="tag">
                        session “{e.view.source.name}”{e.view.source.savedOnly ? ' · saved results' : ''}
                      </span>
                    )}
                    <span className="history-facts muted small">
                      {runFacts(e.view).join(' · ')}
                      {e.attentionDropped && ' · attention let go (Run again to see it)'}
                    </span>
                  </td>
                  <td className="history-pick">
                    <input type="radio" name={`${uid}-a`} checked={h.a === e.id} onChange={() => h.setA(e.id)} aria-label={`Run #${e.id} as A`} />
                  </td>
                  <td className="history-pick">
                    <input type="radio" name={`${uid}-b`} checked={h.b === e.id} onChange={() => h.setB(e.id)} aria-label={`Run #${e.id} as B`} />
                  </td>
                  <td>
                    <button type="button" className="icon-btn" onClick={() => h.remove(e.id)} aria-label={`Remove run #${e.id} from the history`} title="Remove from the history">
                      ×
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <div className="history-actions">
        <button type="button" className="btn btn-primary btn-small" onClick={h.compare} disabled={!!h.compareDisabledReason} aria-describedby={`${uid}-compare-why`}>
          Compare A and B
        </button>
        <span id={`${uid}-compare-why`} className="muted small" data-testid="compare-why">
          {h.compareDisabledReason ?? `Overlays run #${h.b} (B) on run #${h.a} (A): both top-1 tokens and B’s probability minus A’s in every cell.`}
        </span>
      </div>
    </section>
  );
}
