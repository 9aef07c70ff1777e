// What a generation wrote, above its grid: the prompt, then the continuation set apart; with
// compare and interventions, the two continuations (with and without them) one above the other,
// token under token, the token where they part marked and said in words. While the model writes,
// the continuation so far.
import { alignContinuations, divergenceNote, type Generation } from '../lib/generate';
import { formatToken } from '../lib/tokens';

function Chip({ id, token }: { id: number; token: string }) {
  return (
    <span className="gen-token mono" title={`${JSON.stringify(token)} (id ${id})`}>
      {formatToken(token)}
    </span>
  );
}

function Continuations({ generation, written, interventions }: { generation: Generation; written: string[]; interventions: number }) {
  const columns = alignContinuations(generation, written);
  const parting = generation.baseline?.firstDifference ?? null;
  const note = divergenceNote(generation, interventions);
  const cls = (i: number, diverged: boolean) => `gen-cell${diverged ? ' is-diverged' : ''}${i === parting ? ' is-parting' : ''}`;
  return (
    <div className="gen-compare" data-testid="continuations" data-first-difference={parting ?? undefined}>
      <p className={`gen-note small${parting === null ? '' : ' is-changed'}`} role="note" data-testid="divergence-note">
        {note}
      </p>
      <div className="gen-scroll">
        <table className="gen-table" aria-label="What the model writes with and without the interventions, token under token">
          <thead>
            <tr>
              <th scope="col" className="gen-row-name">
                <span className="muted small">Written token</span>
              </th>
              {columns.map((c) => (
                <th key={c.index} scope="col" className={cls(c.index, c.diverged)} title={`Written token ${c.index + 1}, position ${generation.promptTokens + c.index}`}>
                  {c.index === parting && (
                    <span className="gen-parting-mark" aria-label="the continuations part here">
                      ⇣
                    </span>
                  )}
                  {c.index + 1}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            <tr data-testid="continuation-intervened">
              <th scope="row" className="gen-row-name">
                With the interventions
              </th>
              {columns.map((c) => (
                <td key={c.index} className={cls(c.index, c.diverged)} data-diverged={c.diverged ? '1' : undefined}>
                  {c.intervened && <Chip id={c.intervened.id} token={c.intervened.token} />}
                </td>
              ))}
            </tr>
            <tr data-testid="continuation-baseline">
              <th scope="row" className="gen-row-name">
                Without (baseline)
              </th>
              {columns.map((c) => (
                <td key={c.index} className={cls(c.index, c.diverged)} data-diverged={c.diverged ? '1' : undefined}>
                  {c.baseline && <Chip id={c.baseline.id} token={c.baseline.token} />}
                </td>
              ))}
            </tr>
          </tbody>
        </table>
      </div>
      {parting !== null && generation.baseline && (
        <p className="gen-text gen-text-baseline small" data-testid="baseline-text">
          <span className="muted">Without the interventions: </span>
          <mark className="gen-written">{generation.baseline.text}</mark>
        </p>
      )}
    </div>
  );
}

/**
 * A generation on screen: `prompt` as typed, `written` the continuation's tokens (the run's tokens
 * from the prompt's end), `interventions` how many the run applied.
 */
export function GeneratedText({ prompt, generation, written, interventions }: { prompt: string; generation: Generation; written: string[]; interventions: number }) {
  const n = generation.ids.length;
  return (
    <section className="generation" aria-label="Generated text" data-testid="generation">
      <p className="gen-text" data-testid="generated-text">
        <span className="gen-prompt">{prompt}</span>
        <mark className="gen-written" data-testid="generated-continuation">
          {generation.text}
        </mark>
      </p>
      <p className="muted small" data-testid="generation-meta">
        {n} token{n === 1 ? '' : 's'} written by the model
        {generation.stoppedAtEos ? ', the last its end-of-text token' : n < generation.maxNewTokens ? '' : ` (all ${generation.maxNewTokens} asked for)`}.
      </p>
      {generation.baseline && <Continuations generation={generation} written={written} interventions={interventions} />}
    </section>
  );
}

/** The continuation so far, while the model writes it: the tokens chosen, the last still without its column. */
export function LiveText({ prompt, written, pending }: { prompt: string; written: string[]; pending: string | null }) {
  return (
    <section className="generation is-live" aria-label="Text being generated" data-testid="generation-live">
      <p className="gen-text">
        <span className="gen-prompt">{prompt}</span>
        <mark className="gen-written">
          {written.join('')}
          {pending ?? ''}
        </mark>
        <span className="gen-caret" aria-hidden="true" />
      </p>
    </section>
  );
}
