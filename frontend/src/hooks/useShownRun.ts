// The run on screen: a fresh inference or generation, or a session's (re-run, or only its saved
// results), with what was asked and where it came from.
import { useState } from 'react';
import { errorMessage } from '../api/client';
import type { ActivationAnalysis, Backend, DiffCell, InferenceResult, LensRow, Receipt, RunRequest, SaeReadout, TrackedProb } from '../api/types';
import { attentionOfResponse, type AttentionTensor } from '../lib/attention';
import type { Generation } from '../lib/generate';
import { attachedLenses, attachedPath } from '../lib/lenses';
import { servingModel } from '../lib/status';
import type { ModelLoader } from './useModelLoader';
import { useNotify } from './useNotify';

/**
 * A run on screen: a fresh inference, or a session's (re-run, or only its saved results). The
 * client's own: what the server answered, with what was asked and where it came from.
 */
export interface RunView {
  request: RunRequest;
  rows: LensRow[];
  tokens: string[] | null;
  tensor: AttentionTensor | null;
  modelName: string;
  backend: Backend;
  source: { kind: 'inference' } | { kind: 'session'; name: string; savedOnly: boolean };
  /** The server's id for this run, so Save stores what is on screen. */
  runId?: number;
  /** The same text without interventions (`compare`). */
  baselineRows?: LensRow[] | null;
  diff?: DiffCell[][] | null;
  tracked?: TrackedProb[][][] | null;
  entropy?: number[][] | null;
  analysis?: ActivationAnalysis | null;
  /** What the server applied; absent for saved results and older servers. */
  receipts?: Receipt[] | null;
  /**
   * The tuned lens's folder or the Jacobian lens's file, when one of them drew the rows
   * (`request.lens`); null when unknown (a session records a tuned lens's folder only).
   */
  lensPath?: string | null;
  /** The rows the Jacobian lens transported (`Layer ℓ`); the others were read as the logit lens reads them. */
  transportedRows?: string[] | null;
  /** A generation's: what was written after the prompt (the rows and tokens cover both). */
  generation?: Generation | null;
  /** What the attached SAEs read at every position (`sae` in the request), each placed under its lens row. */
  sae?: SaeReadout[] | null;
}

export interface ShownRun {
  view: RunView | null;
  /** Puts a run on screen without running (a session's saved results). */
  show: (v: RunView) => void;
  /** Puts an answer on screen as the run, with what was asked, where it came from and, for a generation, what it wrote. */
  showAnswer: (req: RunRequest, res: InferenceResult, source: RunView['source'] | undefined, generation: Generation | null) => void;
}

export function useShownRun(loader: Pick<ModelLoader, 'currentStatus' | 'selectedModel' | 'backend'>): ShownRun {
  const { notify } = useNotify();
  const [view, setView] = useState<RunView | null>(null);

  const showAnswer: ShownRun['showAnswer'] = (req, res, source, generation) => {
    let tensor: AttentionTensor | null = null;
    try {
      tensor = attentionOfResponse(res);
    } catch (err) {
      // The lens results are still good: show them without attention.
      notify('error', errorMessage(err), 'Could not read the attention of this run');
    }
    const s = servingModel(loader.currentStatus());
    setView({
      request: req,
      rows: res.logit_lens,
      tokens: res.input_tokens ?? null,
      tensor,
      modelName: s?.model_name ?? loader.selectedModel,
      backend: s?.backend ?? loader.backend,
      source: source ?? { kind: 'inference' },
      runId: res.run_id,
      baselineRows: res.baseline_logit_lens ?? null,
      diff: res.diff ?? null,
      tracked: res.tracked ?? null,
      entropy: res.entropy ?? null,
      analysis: res.analysis ?? null,
      receipts: res.receipts ?? null,
      lensPath: req.lens ? attachedPath(req.lens, attachedLenses(s)) : null,
      transportedRows: res.transported_rows ?? null,
      generation,
      sae: res.sae ?? null,
    });
  };

  return { view, show: setView, showAnswer };
}
