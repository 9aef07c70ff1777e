// The receipts of the displayed run: what each intervention did on the server, so that an
// intervention that matched nothing (or changed nothing) is seen rather than guessed.
import type { Receipt } from '../api/types';
import { formatLayer, formatNorm, formatPositions, isNoop } from '../lib/receipts';

interface Props {
  receipts: Receipt[];
  /** interventions of the displayed run */
  interventions: number;
  /** the controls changed since that run */
  stale: boolean;
}

export function Receipts({ receipts, interventions, stale }: Props) {
  if (receipts.length === 0 && interventions === 0) return null;
  return (
    <section className="receipts" aria-label="Applied operations" data-testid="receipts">
      <div className="section-head">
        <h3>Applied in the displayed run</h3>
        {stale && <span className="muted small">(before your latest changes)</span>}
      </div>
      {receipts.length === 0 ? (
        <p className="warn-box small" role="note">
          The run had {interventions} intervention{interventions === 1 ? '' : 's'} but the server applied no operation.
        </p>
      ) : (
        <ul className="receipt-list">
          {receipts.map((r, i) => {
            const noop = isNoop(r);
            return (
              <li key={i} className={`receipt${noop ? ' is-noop' : ''}`} data-testid="receipt">
                <div className="receipt-head">
                  <code className="receipt-key">{r.key}</code>
                  <span className="receipt-arrow" aria-hidden="true">
                    →
                  </span>
                  <code className="receipt-hook" title="hook">
                    {r.hook}
                  </code>
                </div>
                <dl className="receipt-facts">
                  <div>
                    <dt>layer</dt>
                    <dd>{formatLayer(r.layer)}</dd>
                  </div>
                  <div>
                    <dt>positions</dt>
                    <dd title={r.positions.join(', ')}>{formatPositions(r.positions)}</dd>
                  </div>
                  <div>
                    <dt>elements</dt>
                    <dd>{r.elements.toLocaleString('en-US')}</dd>
                  </div>
                  <div>
                    <dt>‖Δ‖</dt>
                    <dd>{formatNorm(r.delta_norm)}</dd>
                  </div>
                </dl>
                {noop && <div className="warn-text receipt-warn">changed nothing</div>}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
