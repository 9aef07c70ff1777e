import { describe, expect, it } from 'vitest';
import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { useState } from 'react';
import type { RunView } from '../hooks/useShownRun';
import { useRunHistory } from '../hooks/useRunHistory';
import { HISTORY_LIMITS, type HistoryLimits } from '../lib/runHistory';
import { formatClock } from '../lib/time';
import { intervenedRows, lensRows, TOKENS } from '../test/fixtures';
import { RunCompareCard } from './RunCompare';
import { RunHistoryCard } from './RunHistory';

function view(text: string, rows = lensRows(), extra: Partial<RunView> = {}): RunView {
  return {
    request: { text, interventions: {}, lens_type: 'block_output', apply_chat_template: false, return_attention: true },
    rows,
    tokens: TOKENS,
    tensor: null,
    modelName: '/fixtures/tiny/llama',
    backend: 'custom',
    source: { kind: 'inference' },
    ...extra,
  };
}

const T0 = new Date(2026, 0, 2, 14, 3, 0).getTime();

/** The page's parts that matter here: the run on screen, the history card and the comparison. */
function setup(limits: HistoryLimits = HISTORY_LIMITS) {
  let put: (v: RunView) => void = () => {};
  let clock = T0;
  function Page() {
    const [shown, setShown] = useState<RunView | null>(null);
    put = setShown;
    const h = useRunHistory({ view: shown, show: setShown }, { now: () => (clock += 60_000), limits });
    return (
      <>
        <div data-testid="on-screen">{shown?.request.text ?? ''}</div>
        <RunHistoryCard h={h} />
        {h.comparison && <RunCompareCard pair={h.comparison} onClose={h.closeCompare} />}
      </>
    );
  }
  render(<Page />);
  return { runs: (...vs: RunView[]) => vs.forEach((v) => act(() => put(v))) };
}

const rowOf = (id: number) => document.querySelector<HTMLElement>(`[data-history-id="${id}"]`)!;

describe('RunHistoryCard', () => {
  it('is not there before a run; lists the runs newest first with their prompt, time and facts, the one on screen marked', () => {
    const { runs } = setup();
    expect(screen.queryByTestId('run-history')).toBeNull();
    runs(view('The capital of France is'), view('The capital of\nGermany is, as everybody knows, a city with a long and complicated history', intervenedRows(), { request: { ...view('').request, text: 'x', interventions: { layer_1_output: [{ type: 'zero', token_index: -1 }] } } }));
    const card = screen.getByTestId('run-history');
    expect(within(card).getByTestId('history-count').textContent).toBe('2 of at most 20 runs');
    expect(within(card).getByTestId('history-note').textContent).toContain('a reload forgets them');
    const ids = Array.from(card.querySelectorAll('tbody tr')).map((tr) => tr.getAttribute('data-history-id'));
    expect(ids).toEqual(['2', '1']);
    const first = rowOf(1);
    expect(within(first).getByRole('button', { name: 'Show run #1 again: The capital of France is' }).textContent).toBe('The capital of France is');
    expect(first.querySelector('.history-time')!.textContent).toBe(formatClock(T0 + 60_000));
    expect(first.querySelector('.history-facts')!.textContent).toBe('llama · Block Output (standard) · logit lens · 4 tokens · 0 interventions');
    expect(rowOf(2).querySelector('.history-facts')!.textContent).toContain('1 intervention');
    // The newest is on screen.
    expect(rowOf(2).getAttribute('aria-current')).toBe('true');
    expect(within(rowOf(2)).getByText('on screen')).toBeTruthy();
    expect(first.getAttribute('aria-current')).toBeNull();
  });

  it('cuts a long prompt to one line, the whole of it in the title', () => {
    const { runs } = setup();
    const long = 'The capital of\nGermany is, as everybody knows, a city with a long and complicated history';
    runs(view(long));
    const btn = within(rowOf(1)).getByRole('button', { name: /^Show run #1 again/ });
    expect(btn.textContent).toBe('The capital of Germany is, as everybody knows, a city with…');
    expect(btn.getAttribute('title')).toBe(long);
  });

  it('a click on a prompt shows that run again, and the mark follows', () => {
    const { runs } = setup();
    runs(view('first'), view('second'));
    expect(screen.getByTestId('on-screen').textContent).toBe('second');
    fireEvent.click(within(rowOf(1)).getByRole('button', { name: /^Show run #1 again/ }));
    expect(screen.getByTestId('on-screen').textContent).toBe('first');
    expect(rowOf(1).getAttribute('aria-current')).toBe('true');
    expect(rowOf(2).getAttribute('aria-current')).toBeNull();
    // Shown again, not run again: still two entries.
    expect(screen.getByTestId('history-count').textContent).toBe('2 of at most 20 runs');
  });

  it('removes an entry and clears the history', () => {
    const { runs } = setup();
    runs(view('first'), view('second'), view('third'));
    fireEvent.click(screen.getByRole('button', { name: 'Remove run #2 from the history' }));
    expect(rowOf(2)).toBeNull();
    expect(screen.getByTestId('history-count').textContent).toBe('2 of at most 20 runs');
    fireEvent.click(screen.getByRole('button', { name: 'Clear history' }));
    expect(screen.queryByTestId('run-history')).toBeNull();
  });

  it('says its bound, and keeps to it', () => {
    const { runs } = setup({ ...HISTORY_LIMITS, maxRuns: 2 });
    runs(view('first'), view('second'), view('third'));
    expect(screen.getByTestId('history-count').textContent).toBe('2 of at most 2 runs');
    expect(screen.getByTestId('history-note').textContent).toContain('The last 2 are kept');
    expect(rowOf(1)).toBeNull();
  });

  it('A and B: the run before the newest and the newest at first; a pick changes them; the same run twice is refused in words', () => {
    const { runs } = setup();
    runs(view('first'));
    const compare = () => screen.getByRole('button', { name: 'Compare A and B' }) as HTMLButtonElement;
    expect(compare().disabled).toBe(true);
    expect(screen.getByTestId('compare-why').textContent).toBe('Compare needs two runs in the history: run another prompt first');
    runs(view('second'), view('third'));
    const radio = (id: number, side: 'A' | 'B') => screen.getByRole('radio', { name: `Run #${id} as ${side}` }) as HTMLInputElement;
    expect(radio(2, 'A').checked).toBe(true);
    expect(radio(3, 'B').checked).toBe(true);
    expect(compare().disabled).toBe(false);
    expect(screen.getByTestId('compare-why').textContent).toContain('Overlays run #3 (B) on run #2 (A)');
    fireEvent.click(radio(3, 'A'));
    expect(compare().disabled).toBe(true);
    expect(screen.getByTestId('compare-why').textContent).toBe('A and B are the same run: pick another for one of them');
    fireEvent.click(radio(1, 'A'));
    expect(compare().disabled).toBe(false);
    expect(compare().getAttribute('aria-describedby')).toBe(screen.getByTestId('compare-why').id);
  });

  it('Compare overlays B on A, with both tokens in a cell, and closes', () => {
    const { runs } = setup();
    runs(view('base'), view('zeroed', intervenedRows()));
    expect(screen.queryByTestId('run-compare')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Compare A and B' }));
    const card = screen.getByTestId('run-compare');
    expect(within(card).getByTestId('compare-side-a').textContent).toContain('run #1 “base”');
    expect(within(card).getByTestId('compare-side-b').textContent).toContain('run #2 “zeroed”');
    // The keyboard goes to the comparison.
    expect(document.activeElement).toBe(card);
    const cell = card.querySelector<HTMLElement>('[data-cmp-cell][data-r="1"][data-c="1"]')!;
    expect(Array.from(cell.querySelectorAll('.cmp-tok')).map((e) => e.textContent)).toEqual(['A\\t', 'B␣dog']);
    fireEvent.click(within(card).getByRole('button', { name: 'Close the run comparison' }));
    expect(screen.queryByTestId('run-compare')).toBeNull();
  });
});
