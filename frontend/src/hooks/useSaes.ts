// The SAEs attached to the model in service (its status's `saes`), and attaching and removing them:
// POST /load_sae with a folder on the server's machine (a SAELens folder, a Gemma Scope folder, or
// `org/name:folder` from the Hub cache) and an optional name and hook; POST /unload_sae. The
// server's refusal (a width that does not fit the model, a hook it does not have) is kept in words.
import { useState } from 'react';
import { errorMessage } from '../api/client';
import { api } from '../api/client';
import type { AttachedSae, SaeSource } from '../api/types';
import type { ModelLoader } from './useModelLoader';

export interface SaesState {
  /** Attached to the model in service, in the server's order (empty without a model). */
  attached: AttachedSae[];
  /** A model is in service to attach to. */
  available: boolean;
  /** A model load is under way: an SAE attached now would go with the model it replaces. */
  busy: boolean;
  path: string;
  setPath: (v: string) => void;
  name: string;
  setName: (v: string) => void;
  hook: string;
  setHook: (v: string) => void;
  attaching: boolean;
  /** Attaches the SAE of the form; true when it was attached (the form is then cleared). */
  attach: () => Promise<boolean>;
  /** The name being removed, or null. */
  removing: string | null;
  remove: (name: string) => Promise<void>;
  /** Why the last attach or remove failed, in the server's words, or null. */
  error: string | null;
}

export function useSaes(loader: Pick<ModelLoader, 'model' | 'modelBusy' | 'refreshStatus'>): SaesState {
  const [path, setPathState] = useState('');
  const [name, setNameState] = useState('');
  const [hook, setHookState] = useState('');
  const [attaching, setAttaching] = useState(false);
  const [removing, setRemoving] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const edit = (set: (v: string) => void) => (v: string) => {
    set(v);
    setError(null);
  };

  const attach = async () => {
    const p = path.trim();
    if (!p || attaching) return false;
    const source: SaeSource = { path: p, ...(name.trim() ? { name: name.trim() } : {}), ...(hook.trim() ? { hook: hook.trim() } : {}) };
    setAttaching(true);
    setError(null);
    try {
      await api.loadSae([source]);
      // The server also says so on /events; asking keeps the page right when the stream is down.
      await loader.refreshStatus();
      setPathState('');
      setNameState('');
      setHookState('');
      return true;
    } catch (err) {
      setError(errorMessage(err));
      return false;
    } finally {
      setAttaching(false);
    }
  };

  const remove = async (n: string) => {
    setRemoving(n);
    setError(null);
    try {
      await api.unloadSae([n]);
      await loader.refreshStatus();
    } catch (err) {
      setError(`Could not remove ${n}: ${errorMessage(err)}`);
    } finally {
      setRemoving(null);
    }
  };

  return {
    attached: loader.model?.saes ?? [],
    available: !!loader.model,
    busy: loader.modelBusy,
    path,
    setPath: edit(setPathState),
    name,
    setName: edit(setNameState),
    hook,
    setHook: edit(setHookState),
    attaching,
    attach,
    removing,
    remove,
    error,
  };
}
