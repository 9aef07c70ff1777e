import { describe, expect, it } from 'vitest';
import { render, screen, within } from '@testing-library/react';
import type { Generation } from '../lib/generate';
import { GeneratedText, LiveText } from './Generation';

const WRITTEN = [' sat', ' down', '.'];

function generation(baseline: Generation['baseline'] = null, stoppedAtEos = false): Generation {
  return { promptTokens: 4, maxNewTokens: 3, ids: [11, 12, 13], text: ' sat down.', stoppedAtEos, baseline };
}

const texts = (row: HTMLElement) => Array.from(row.querySelectorAll('td')).map((td) => td.textContent);

describe('GeneratedText', () => {
  it('the prompt as typed, then the continuation set apart, and how much was written', () => {
    render(<GeneratedText prompt="The cat" generation={generation()} written={WRITTEN} interventions={0} />);
    const text = screen.getByTestId('generated-text');
    expect(text.textContent).toBe('The cat sat down.');
    expect(within(text).getByTestId('generated-continuation').tagName).toBe('MARK');
    expect(within(text).getByTestId('generated-continuation').textContent).toBe(' sat down.');
    expect(screen.getByTestId('generation-meta').textContent).toBe('3 tokens written by the model (all 3 asked for).');
    expect(screen.queryByTestId('continuations')).toBeNull();
  });

  it('says when the model stopped at its end-of-text token', () => {
    render(<GeneratedText prompt="The cat" generation={{ ...generation(null, true), maxNewTokens: 20 }} written={WRITTEN} interventions={0} />);
    expect(screen.getByTestId('generation-meta').textContent).toBe('3 tokens written by the model, the last its end-of-text token.');
  });

  it('with a baseline: both continuations token under token, marked from where they part, said in words', () => {
    const g = generation({ ids: [11, 14, 15, 16], text: ' sat up!?', tokens: [' sat', ' up', '!', '?'], firstDifference: 1 });
    render(<GeneratedText prompt="The cat" generation={g} written={WRITTEN} interventions={1} />);
    const box = screen.getByTestId('continuations');
    expect(box.dataset.firstDifference).toBe('1');
    expect(screen.getByTestId('divergence-note').textContent).toBe('The intervention changed what the model writes from token 2 on (position 5).');
    const intervened = screen.getByTestId('continuation-intervened');
    const baseline = screen.getByTestId('continuation-baseline');
    expect(texts(intervened)).toEqual(['␣sat', '␣down', '.', '']);
    expect(texts(baseline)).toEqual(['␣sat', '␣up', '!', '?']);
    for (const row of [intervened, baseline]) {
      expect(Array.from(row.querySelectorAll('td')).map((td) => td.dataset.diverged ?? '')).toEqual(['', '1', '1', '1']);
    }
    // The parting column is marked in its head.
    const heads = Array.from(box.querySelectorAll('thead th'));
    expect(heads.map((h) => h.textContent)).toEqual(['Written token', '1', '⇣2', '3', '4']);
    expect(heads[2].className).toContain('is-parting');
    expect(screen.getByTestId('baseline-text').textContent).toBe('Without the interventions:  sat up!?');
  });

  it('with a baseline that wrote the same: says the interventions changed nothing written', () => {
    const g = generation({ ids: [11, 12, 13], text: ' sat down.', tokens: WRITTEN, firstDifference: null });
    render(<GeneratedText prompt="The cat" generation={g} written={WRITTEN} interventions={2} />);
    expect(screen.getByTestId('divergence-note').textContent).toBe('The interventions did not change what the model writes.');
    expect(screen.getByTestId('continuations').querySelectorAll('[data-diverged]')).toHaveLength(0);
    expect(screen.queryByTestId('baseline-text')).toBeNull();
  });
});

describe('LiveText', () => {
  it('the prompt and what was written so far, the last token chosen included', () => {
    render(<LiveText prompt="The cat" written={[' sat']} pending=" down" />);
    expect(screen.getByTestId('generation-live').textContent).toBe('The cat sat down');
  });
});
