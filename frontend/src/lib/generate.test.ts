import { describe, expect, it } from 'vitest';
import type { GenerateResponse, GenerateStep } from '../api/types';
import {
  addStep,
  alignContinuations,
  divergenceNote,
  EMPTY_STREAM,
  generationOf,
  parseMaxNewTokens,
  type StreamGrid,
} from './generate';
import { STREAM_PROMPT as PROMPT, STREAM_STEPS as STEPS, streamRows as rows } from '../test/fixtures';


function feed(steps: GenerateStep[]): StreamGrid {
  let g = EMPTY_STREAM;
  for (const s of steps) {
    const r = addStep(g, s);
    if (!r.ok) throw new Error(r.error);
    g = r.value;
  }
  return g;
}
describe('parseMaxNewTokens', () => {
  it('a whole number from 1 to 256', () => {
    expect(parseMaxNewTokens('20')).toEqual({ ok: true, value: 20 });
    expect(parseMaxNewTokens(' 1 ')).toEqual({ ok: true, value: 1 });
    expect(parseMaxNewTokens('256')).toEqual({ ok: true, value: 256 });
  });
  it('says what is wrong with anything else', () => {
    expect(parseMaxNewTokens('')).toEqual({ ok: false, error: 'Type how many tokens to write: a whole number from 1 to 256' });
    expect(parseMaxNewTokens('0')).toEqual({ ok: false, error: 'New tokens: 0 is not a whole number from 1 to 256' });
    expect(parseMaxNewTokens('257')).toEqual({ ok: false, error: 'New tokens: 257 is not a whole number from 1 to 256' });
    expect(parseMaxNewTokens('2.5')).toEqual({ ok: false, error: 'New tokens: “2.5” is not a whole number from 1 to 256' });
    expect(parseMaxNewTokens('-3').ok).toBe(false);
  });
});

describe('addStep: the grid grows as the steps arrive', () => {
  it('pass 0 brings the prompt at once and the token it chose, pending', () => {
    const g = feed(STEPS.slice(0, 1));
    expect(g.tokens).toEqual(PROMPT);
    expect(g.rows.map((r) => r.predictions.length)).toEqual([3, 3, 3]);
    expect(g.promptTokens).toBe(3);
    expect(g.pending).toEqual({ id: 7, token: ' a' });
    expect(g.written).toBe(1);
  });

  it('each later pass adds the chosen token’s column; the last pass chooses nothing', () => {
    const g1 = feed(STEPS.slice(0, 2));
    expect(g1.tokens).toEqual([...PROMPT, ' a']);
    expect(g1.pending).toEqual({ id: 8, token: ' time' });
    expect(g1.written).toBe(2);
    const g = feed(STEPS);
    expect(g.tokens).toEqual([...PROMPT, ' a', ' time']);
    expect(g.rows.map((r) => r.predictions.map((p) => p[0].id))).toEqual(Array(3).fill([100, 101, 102, 103, 104]));
    expect(g.rows.map((r) => r.layer_name)).toEqual(['Embeddings', 'Layer 0', 'Final Output']);
    expect(g.pending).toBeNull();
    expect(g.written).toBe(2);
    expect(g.promptTokens).toBe(3);
  });

  it('leaves the grid it was given as it was', () => {
    const g0 = feed(STEPS.slice(0, 1));
    const before = JSON.stringify(g0);
    feed(STEPS);
    const r = addStep(g0, STEPS[1]);
    expect(r.ok).toBe(true);
    expect(JSON.stringify(g0)).toBe(before);
  });

  it('refuses a step that does not continue the grid', () => {
    const g0 = feed(STEPS.slice(0, 1));
    expect(addStep(g0, STEPS[2])).toEqual({ ok: false, error: 'The server sent the columns from position 4 while 3 had come' });
    expect(addStep(g0, { ...STEPS[1], columns: STEPS[1].columns.slice(1) })).toEqual({ ok: false, error: 'The server sent 2 rows for a grid of 3' });
  });
});

/** A generation of " a time" (ids 7, 8) after PROMPT; the baseline wrote " a" then " dog" (9). */
function answer(baseline: GenerateResponse['baseline_generation']): GenerateResponse {
  return {
    text: 'Once upon',
    input_tokens: [...PROMPT, ' a', ' time'],
    logit_lens: rows(5),
    generated_ids: [7, 8],
    generated_text: ' a time',
    prompt_tokens: 3,
    stopped_at_eos: false,
    baseline_generation: baseline,
  };
}

describe('what was written, with and without the interventions', () => {
  it('the run keeps the continuation and the baseline’s, with its tokens', () => {
    const res = answer({ generated_ids: [7, 9, 300], generated_tokens: [' a', ' dog', '!'], generated_text: ' a dog!', first_difference: 1 });
    const g = generationOf(res, 20);
    expect(g).toEqual({
      promptTokens: 3,
      maxNewTokens: 20,
      ids: [7, 8],
      text: ' a time',
      stoppedAtEos: false,
      baseline: { ids: [7, 9, 300], text: ' a dog!', tokens: [' a', ' dog', '!'], firstDifference: 1 },
    });
    expect(generationOf(answer(null), 20).baseline).toBeNull();
  });

  it('aligns the two token under token, marked from where they part', () => {
    const g = generationOf(answer({ generated_ids: [7, 9, 300], generated_tokens: [' a', ' dog', '!'], generated_text: ' a dog!', first_difference: 1 }), 20);
    expect(alignContinuations(g, [' a', ' time'])).toEqual([
      { index: 0, intervened: { id: 7, token: ' a' }, baseline: { id: 7, token: ' a' }, diverged: false },
      { index: 1, intervened: { id: 8, token: ' time' }, baseline: { id: 9, token: ' dog' }, diverged: true },
      { index: 2, intervened: null, baseline: { id: 300, token: '!' }, diverged: true },
    ]);
    expect(divergenceNote(g, 1)).toBe('The intervention changed what the model writes from token 2 on (position 4).');
    expect(divergenceNote(g, 3)).toBe('The interventions changed what the model writes from token 2 on (position 4).');
  });

  it('says so when the interventions changed nothing written, and nothing without a baseline', () => {
    const same = generationOf(answer({ generated_ids: [7, 8], generated_tokens: [' a', ' time'], generated_text: ' a time', first_difference: null }), 20);
    expect(alignContinuations(same, [' a', ' time']).every((c) => !c.diverged)).toBe(true);
    expect(divergenceNote(same, 1)).toBe('The intervention did not change what the model writes.');
    expect(divergenceNote(generationOf(answer(null), 20), 0)).toBeNull();
  });
});
