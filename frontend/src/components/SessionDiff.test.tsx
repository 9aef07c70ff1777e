import { describe, expect, it } from 'vitest';
import { render, screen } from '@testing-library/react';
import type { SessionDiffResponse } from '../api/types';
import { diffGrid, intervenedRows, lensRows, TOKENS } from '../test/fixtures';
import { SessionDiffCard } from './SessionDiff';

const RES: SessionDiffResponse = {
  a: { session_id: 'a', model_name: '/fixtures/tiny/llama', lens_type: 'block_output' },
  b: { session_id: 'b', model_name: '/fixtures/tiny/llama', lens_type: 'block_output' },
  input_tokens: TOKENS,
  layer_names: ['Embeddings', 'Layer 0', 'Final Output'],
  a_logit_lens: lensRows(),
  b_logit_lens: intervenedRows(),
  diff: diffGrid(),
};

describe('SessionDiffCard', () => {
  it('names both sides; the same model is not "two checkpoints"', () => {
    render(<SessionDiffCard view={{ res: RES, aName: 'base', bName: 'ablate' }} onClose={() => {}} />);
    expect(screen.getByTestId('session-diff-a').textContent).toBe('A (baseline): “base” · llama · Block Output (standard)');
    expect(screen.getByTestId('session-diff-caption').textContent).not.toContain('two checkpoints');
    // The server projects the saved states through each model's head, whichever lens drew them.
    expect(screen.getByTestId('grid-lens').textContent).toBe('Drawn by the logit lens');
  });

  it('sessions that do not record their model, lens type or tokens (the original tool\'s, older ones)', () => {
    const res: SessionDiffResponse = { ...RES, a: { session_id: 'a' }, b: { session_id: 'b', model_name: null, lens_type: null }, input_tokens: null };
    render(<SessionDiffCard view={{ res, aName: 'old', bName: 'older' }} onClose={() => {}} />);
    expect(screen.getByTestId('session-diff-a').textContent).toBe('A (baseline): “old” · model not recorded · lens type not recorded');
    expect(screen.getByTestId('session-diff-b').textContent).toBe('B: “older” · model not recorded · lens type not recorded');
    // Unknown models are not said to differ.
    expect(screen.getByTestId('session-diff-caption').textContent).not.toContain('two checkpoints');
    expect(screen.getByTestId('session-diff-grid')).toBeTruthy();
  });
});
