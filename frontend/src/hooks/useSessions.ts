// Saved sessions: the list, save, delete, load (restore the controls, show the saved results,
// then re-run on the session's model, and with its tuned lens when one drew it (with the Jacobian
// lens attached when one drew it: a session does not name its file), unless only the
// visualization is wanted; a generation's is generated again, as many tokens as it wrote) and the
// diff of two.
import { useEffect, useState } from 'react';
import { api, errorMessage } from '../api/client';
import type { Lens, SessionConfig, SessionDiffResponse, SessionEntry } from '../api/types';
import { MAX_NEW_TOKENS, type Generation } from '../lib/generate';
import { normalizeInterventions } from '../lib/interventions';
import { isLens, jacobianSummary, lensPathName } from '../lib/lenses';
import { isLensType } from '../lib/lensTypes';
import { backendLabel, normalizeBackend, shortModelName } from '../lib/models';
import { servingModel } from '../lib/status';
import { useNotify } from './useNotify';
import type { ModelLoader } from './useModelLoader';
import type { RunState } from './useRun';

/** Two sessions compared: the server's diff of B against A, and their names. */
export interface SessionDiffView {
  res: SessionDiffResponse;
  aName: string;
  bName: string;
}

export interface SessionsState {
  /** null until first listed */
  list: SessionEntry[] | null;
  loading: boolean;
  error: string | null;
  refresh: () => Promise<void>;
  /** Saves the run on screen (the server's last run when none is); throws the server's reason. */
  save: (name: string) => Promise<void>;
  remove: (s: SessionEntry) => Promise<void>;
  /** Restores `s`; failures are said in toasts. */
  load: (s: SessionEntry) => Promise<void>;
  /** A load is under way. */
  busy: boolean;
  /** Show saved results without switching models or re-running (kept in localStorage). */
  vizOnly: boolean;
  setVizOnly: (v: boolean) => void;
  /** Diffs `b` against `a`; throws the server's reason when they do not compare. */
  compare: (a: SessionEntry, b: SessionEntry) => Promise<void>;
  diff: SessionDiffView | null;
  closeDiff: () => void;
}

export interface SessionsOptions {
  /** A session is on screen (restored or compared): the dialog that asked can close. */
  onShown: () => void;
}

const VIZ_ONLY_KEY = 'logitlens.vizOnly';

function readVizOnly(): boolean {
  try {
    return window.localStorage.getItem(VIZ_ONLY_KEY) === '1';
  } catch {
    return false;
  }
}

/**
 * A generation's session (it records the ids written and the prompt's token count), as the run on
 * screen keeps it; null for a run's. The text is the saved tokens' (the session keeps no other).
 */
function generationOfSession(cfg: SessionConfig, tokens: string[] | null): Generation | null {
  const ids = cfg.generated_ids;
  const prompt = cfg.prompt_tokens;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => Number.isInteger(id)) || typeof prompt !== 'number' || !Number.isInteger(prompt) || prompt < 0) return null;
  const written = tokens?.slice(prompt, prompt + ids.length) ?? [];
  return { promptTokens: prompt, maxNewTokens: Math.min(ids.length, MAX_NEW_TOKENS), ids, text: written.join(''), stoppedAtEos: false, baseline: null };
}

export function useSessions(run: Pick<RunState, 'inputs' | 'view' | 'show' | 'runInference' | 'generate'>, loader: ModelLoader, { onShown }: SessionsOptions): SessionsState {
  const { notify } = useNotify();
  const [list, setList] = useState<SessionEntry[] | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [vizOnly, setVizOnly] = useState(readVizOnly);
  const [diff, setDiff] = useState<SessionDiffView | null>(null);

  useEffect(() => {
    try {
      window.localStorage.setItem(VIZ_ONLY_KEY, vizOnly ? '1' : '0');
    } catch {
      /* storage may be unavailable */
    }
  }, [vizOnly]);

  const refresh = async () => {
    setLoading(true);
    setError(null);
    try {
      setList(await api.sessions());
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setLoading(false);
    }
  };

  const save = async (name: string) => {
    const r = await api.saveState(name, run.view?.runId);
    notify('success', `Saved as ${r.session_id}`, 'Session saved');
  };

  const remove = async (s: SessionEntry) => {
    await api.deleteSession(s.id);
    notify('success', `Deleted “${s.name}”`);
    await refresh();
  };

  const compare = async (a: SessionEntry, b: SessionEntry) => {
    const res = await api.diffSessions(a.id, b.id);
    setDiff({ res, aName: a.name, bName: b.name });
    onShown();
  };

  const load = async (s: SessionEntry) => {
    setBusy(true);
    try {
      let cfg: SessionConfig;
      try {
        cfg = await api.loadSession(s.id);
      } catch (err) {
        notify('error', errorMessage(err), `Could not load session “${s.name}”`);
        return;
      }
      // What the file holds, each field checked: the original tool's sessions and older ones may
      // lack any, and name the hooked backend `transformerlens`.
      const text = typeof cfg.text === 'string' ? cfg.text : '';
      const interventions = normalizeInterventions(cfg.interventions);
      const lensType = isLensType(cfg.lens_type) ? cfg.lens_type : 'block_output';
      const chat = !!cfg.apply_chat_template;
      const wantModel = typeof cfg.model_name === 'string' ? cfg.model_name : '';
      const wantBackend = normalizeBackend(cfg.backend);
      // Sessions from before tuned lenses (and the original tool's) were drawn by the logit lens.
      const lens: Lens = isLens(cfg.lens) ? cfg.lens : 'logit';
      const tunedFolder = lens === 'tuned' && typeof cfg.tuned_lens === 'string' && cfg.tuned_lens ? cfg.tuned_lens : null;
      run.inputs.setText(text);
      run.inputs.setInterventions(interventions);
      run.inputs.setLensType(lensType);
      run.inputs.setOptions({ ...run.inputs.options, lens });
      loader.setUseChat(chat);
      const savedRows = cfg.results?.logit_lens;
      const savedTokens = Array.isArray(cfg.input_tokens) ? cfg.input_tokens : null;
      const generation = generationOfSession(cfg, savedTokens);
      if (Array.isArray(savedRows) && savedRows.length > 0) {
        run.show({
          request: { text, interventions, lens_type: lensType, apply_chat_template: chat, return_attention: false, lens },
          rows: savedRows,
          tokens: savedTokens,
          tensor: null,
          modelName: wantModel,
          backend: wantBackend,
          source: { kind: 'session', name: s.name, savedOnly: true },
          lensPath: tunedFolder,
          generation,
        });
      }
      onShown();
      if (vizOnly) {
        notify(
          'info',
          savedRows?.length ? 'Showing the saved results: the model was not switched and nothing was re-run.' : 'This session has no saved results.',
          `Session “${s.name}”`,
        );
        return;
      }
      const cur = loader.currentStatus();
      if (cur?.status === 'loading' || loader.isLoading()) {
        notify('info', 'A model is loading: the saved results are shown; run again once it is ready.', `Session “${s.name}”`);
        return;
      }
      const serving = servingModel(cur);
      const switching = !!wantModel && (!serving || wantModel !== serving.model_name || wantBackend !== normalizeBackend(serving.backend));
      if (switching) {
        notify('info', `Switching to ${shortModelName(wantModel)} (${backendLabel(wantBackend)}) to re-run the session…`, `Session “${s.name}”`);
        const ok = await loader.switchTo(wantModel, wantBackend, chat);
        if (!ok) {
          notify('error', `The saved results are shown, but were not re-run: the session's model ${wantModel} could not be loaded.`, `Session “${s.name}”`);
          return;
        }
      }
      // Drawn by a tuned lens: re-run with that lens, attached first unless it already is (a model
      // just loaded has none), rather than redraw the session with another lens.
      if (lens === 'tuned') {
        const attached = switching ? null : (serving?.tuned_lens ?? null);
        if (tunedFolder && attached !== tunedFolder) {
          try {
            await loader.attachLens(tunedFolder);
            notify('info', `Attached the tuned lens “${lensPathName(tunedFolder)}” that drew the session, to re-run it.`, `Session “${s.name}”`);
          } catch (err) {
            notify(
              'error',
              `The saved results are shown, but were not re-run: the session was drawn with the tuned lens ${tunedFolder}, which could not be attached: ${errorMessage(err)}`,
              `Session “${s.name}”`,
            );
            return;
          }
        } else if (!tunedFolder && !attached) {
          notify('error', 'The saved results are shown, but were not re-run: the session was drawn with a tuned lens it does not name. Attach that lens in the header, then Run.', `Session “${s.name}”`);
          return;
        }
      }
      // Drawn by a Jacobian lens: the session does not record its file, so it is re-run with the
      // one attached, said so; without one it is not re-run at all rather than redrawn otherwise.
      if (lens === 'jacobian') {
        const jacobian = switching ? null : (serving?.jacobian_lens ?? null);
        if (!jacobian) {
          notify(
            'error',
            'The saved results are shown, but were not re-run: the session was drawn with a Jacobian lens, and none is attached to this model (a session does not record its file). Attach it under Lenses in the header, then Run.',
            `Session “${s.name}”`,
          );
          return;
        }
        notify('info', `Re-run with the Jacobian lens attached now (${jacobianSummary(jacobian)}): the session does not record which file drew it.`, `Session “${s.name}”`);
      }
      // The controls were set above but this render's closure predates them: pass them along.
      const asked = { text, interventions, lens_type: lensType, apply_chat_template: chat, lens };
      const source = { kind: 'session', name: s.name, savedOnly: false } as const;
      if (generation) await run.generate(asked, { maxNewTokens: generation.maxNewTokens, source });
      else await run.runInference(asked, source);
    } finally {
      setBusy(false);
    }
  };

  return { list, loading, error, refresh, save, remove, load, busy, vizOnly, setVizOnly, compare, diff, closeDiff: () => setDiff(null) };
}
