import { describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import type { TrackToken } from '../api/types';
import { lensChoices, type AttachedLenses } from '../lib/lenses';
import { JACOBIAN } from '../test/fixtures';
import { LensSelect } from './LensSelect';
import type { RunOptionsValue } from '../lib/runOptions';
import { RunOptions, TrackTokensInput } from './RunOptions';

function Harness({ initial = [] as TrackToken[] }) {
  const [v, setV] = useState<TrackToken[]>(initial);
  return (
    <>
      <TrackTokensInput value={v} onChange={setV} />
      <pre data-testid="value">{JSON.stringify(v)}</pre>
    </>
  );
}

const value = () => JSON.parse(screen.getByTestId('value').textContent!) as TrackToken[];
const input = () => screen.getByLabelText('Track tokens') as HTMLInputElement;
const chips = () => Array.from(document.querySelectorAll('.track-chip')).map((c) => c.firstChild!.textContent);

describe('TrackTokensInput', () => {
  it('Enter adds a token with its leading space, shown as ␣', () => {
    render(<Harness />);
    fireEvent.change(input(), { target: { value: ' Paris' } });
    expect(screen.getByTestId('track-preview').textContent).toBe('Enter adds: ␣Paris');
    fireEvent.keyDown(input(), { key: 'Enter' });
    expect(value()).toEqual([' Paris']);
    expect(chips()).toEqual(['␣Paris']);
    expect(input().value).toBe('');
  });

  it('a comma completes the tokens before it; numbers are ids', () => {
    render(<Harness />);
    fireEvent.change(input(), { target: { value: '42, Lon' } });
    expect(value()).toEqual([42]);
    expect(input().value).toBe(' Lon');
    fireEvent.change(input(), { target: { value: ' London,' } });
    expect(value()).toEqual([42, ' London']);
    expect(chips()).toEqual(['#42', '␣London']);
  });

  it('leaving the field keeps what was typed; Backspace on an empty field and × remove chips', () => {
    render(<Harness initial={['a']} />);
    fireEvent.change(input(), { target: { value: 'b' } });
    fireEvent.blur(input());
    expect(value()).toEqual(['a', 'b']);
    fireEvent.keyDown(input(), { key: 'Backspace' });
    expect(value()).toEqual(['a']);
    fireEvent.click(screen.getByLabelText('Stop tracking a'));
    expect(value()).toEqual([]);
  });

  it('shows what is wrong and keeps the text for fixing', () => {
    render(<Harness initial={Array.from({ length: 16 }, (_, i) => i)} />);
    // Full: the field is closed until a chip goes.
    expect(input().disabled).toBe(true);
    fireEvent.click(screen.getByLabelText('Stop tracking #15'));
    fireEvent.change(input(), { target: { value: '"oops' } });
    fireEvent.keyDown(input(), { key: 'Enter' });
    // Not quoted to the end: an ordinary token string.
    expect(value()).toContain('"oops');
    fireEvent.click(screen.getByLabelText('Stop tracking "oops'));
    fireEvent.change(input(), { target: { value: '"a\\q"' } });
    fireEvent.keyDown(input(), { key: 'Enter' });
    expect(screen.getByTestId('track-error').textContent).toContain('is not a valid quoted string');
    expect(input().value).toBe('"a\\q"');
    fireEvent.change(input(), { target: { value: 'x, y,' } });
    expect(screen.getByTestId('track-error').textContent).toContain('At most 16 tokens');
    expect(input().value).toBe('x, y,');
    expect(value()).toHaveLength(15);
  });
});

describe('RunOptions', () => {
  it('offers SAE features and how many a position only with SAEs attached', () => {
    const onChange = vi.fn();
    const v: RunOptionsValue = { compare: false, analysis: false, track: [], sae: true, saeTopK: 8 };
    const { rerender } = render(<RunOptions value={v} onChange={onChange} hasInterventions={false} />);
    expect(screen.queryByLabelText('SAE features')).toBeNull();
    rerender(<RunOptions value={v} onChange={onChange} hasInterventions={false} saes={2} />);
    expect(screen.getByText(/A row per SAE attached \(2\)/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText('SAE features per position'), { target: { value: '0' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...v, saeTopK: 0 });
    fireEvent.click(screen.getByLabelText('SAE features'));
    expect(onChange).toHaveBeenLastCalledWith({ ...v, sae: false });
  });

  it('toggles compare and analysis', () => {
    const onChange = vi.fn();
    const v: RunOptionsValue = { compare: false, analysis: false, track: [] };
    const { rerender } = render(<RunOptions value={v} onChange={onChange} hasInterventions />);
    fireEvent.click(screen.getByLabelText(/Compare with baseline/));
    expect(onChange).toHaveBeenLastCalledWith({ ...v, compare: true });
    fireEvent.click(screen.getByLabelText(/Activation analysis/));
    expect(onChange).toHaveBeenLastCalledWith({ ...v, analysis: true });
    rerender(<RunOptions value={{ ...v, compare: true }} onChange={onChange} hasInterventions={false} />);
    expect(screen.getByText(/without one the baseline is the same run/)).toBeTruthy();
  });

  it('offers the lens select only with a learned lens attached', () => {
    const onChange = vi.fn();
    const v: RunOptionsValue = { compare: false, analysis: false, track: [] };
    const { rerender } = render(<RunOptions value={v} onChange={onChange} hasInterventions={false} />);
    expect(screen.queryByLabelText(LABEL)).toBeNull();
    rerender(<RunOptions value={v} onChange={onChange} hasInterventions={false} lenses={{ choices: null, effective: 'logit' }} />);
    expect(screen.queryByLabelText(LABEL)).toBeNull();
    rerender(<RunOptions value={v} onChange={onChange} hasInterventions={false} lenses={{ choices: lensChoices(TUNED, 'block_output'), effective: 'logit' }} />);
    const select = screen.getByLabelText(LABEL) as HTMLSelectElement;
    expect(select.value).toBe('logit');
    expect(Array.from(select.options).map((o) => o.textContent)).toEqual(['Logit lens', 'Tuned lens (llama)', 'Jacobian lens (none attached)']);
    fireEvent.change(select, { target: { value: 'tuned' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...v, lens: 'tuned' });
  });
});

const LABEL = 'Lens (logit, tuned or Jacobian)';
const TUNED: AttachedLenses = { tuned: '/lenses/llama', jacobian: null };
const BOTH: AttachedLenses = { tuned: '/lenses/llama', jacobian: JACOBIAN };

describe('LensSelect', () => {
  it('says what each lens does', () => {
    const choices = lensChoices(BOTH, 'block_output')!;
    const { rerender } = render(<LensSelect value="logit" onChange={() => {}} choices={choices} />);
    expect(screen.getByTestId('lens-hint').textContent).toMatch(/model’s own final norm and head/);
    rerender(<LensSelect value="tuned" onChange={() => {}} choices={choices} />);
    expect((screen.getByLabelText(LABEL) as HTMLSelectElement).value).toBe('tuned');
    expect(screen.getByTestId('lens-hint').textContent).toMatch(/tuned lens’s translator/);
    rerender(<LensSelect value="jacobian" onChange={() => {}} choices={choices} />);
    expect((screen.getByLabelText(LABEL) as HTMLSelectElement).value).toBe('jacobian');
    expect(screen.getByTestId('lens-hint').textContent).toMatch(/Jacobian lens’s matrix for its layer.*marked J/);
    expect(screen.getByLabelText(LABEL).closest('label')!.title).toBe(JACOBIAN.path);
  });

  it('a lens that is not attached cannot be chosen, and says why', () => {
    const onChange = vi.fn();
    render(<LensSelect value="logit" onChange={onChange} choices={lensChoices(TUNED, 'block_output')!} />);
    const jac = screen.getByRole('option', { name: 'Jacobian lens (none attached)' }) as HTMLOptionElement;
    expect(jac.disabled).toBe(true);
    expect(jac.title).toMatch(/^No Jacobian lens is attached: attach its file under Lenses in the header, or fit one/);
    expect((screen.getByRole('option', { name: 'Tuned lens (llama)' }) as HTMLOptionElement).disabled).toBe(false);
  });

  it('a lens type the learned lenses cannot draw: disabled, showing the logit lens the run will use, and why', () => {
    const choices = lensChoices(BOTH, 'post_attention')!;
    render(<LensSelect value="jacobian" onChange={() => {}} choices={choices} />);
    const select = screen.getByLabelText(LABEL) as HTMLSelectElement;
    expect(select.disabled).toBe(true);
    expect(select.value).toBe('logit');
    expect(screen.getByTestId('lens-hint').textContent).toBe(choices.disabledReason);
    expect(choices.disabledReason).toMatch(/read block outputs: choose the Block Output lens type/);
  });
});
