// The searchable model browser: GET /models entries, family chips, a search over id, name,
// family and size, cached models marked, and a free-text entry for any id, folder or .gguf path.
import { useMemo, useState } from 'react';
import type { Backend, ModelEntry } from '../api/types';
import { familyCounts, filterModels, formatBytes } from '../lib/models';
import { Dialog } from './Dialog';

interface Props {
  models: ModelEntry[];
  modelsError: string | null;
  modelsLoading: boolean;
  onRetry: () => void;
  backend: Backend;
  selectedModel: string;
  onPick: (id: string) => void;
  onClose: () => void;
}

export function ModelBrowser({ models, modelsError, modelsLoading, onRetry, backend, selectedModel, onPick, onClose }: Props) {
  const [query, setQuery] = useState('');
  const [family, setFamily] = useState('All');
  const [cachedOnly, setCachedOnly] = useState(false);
  const [custom, setCustom] = useState('');

  const chips = useMemo(() => familyCounts(models), [models]);
  const shown = useMemo(
    () => filterModels(models, query, family).filter((m) => !cachedOnly || m.cached),
    [models, query, family, cachedOnly],
  );

  const submitCustom = () => {
    const id = custom.trim();
    if (id) onPick(id);
  };

  return (
    <Dialog title="Browse models" onClose={onClose} wide testId="model-browser">
      <div className="browser">
        <input
          type="search"
          className="input browser-search"
          data-autofocus
          aria-label="Search models"
          placeholder="Search by name, id, family or size (e.g. 'qwen3', '135m', 'smol instruct')"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <div className="chips" role="group" aria-label="Family">
          <button type="button" className={`chip${family === 'All' ? ' chip-active' : ''}`} aria-pressed={family === 'All'} onClick={() => setFamily('All')}>
            All ({models.length})
          </button>
          {chips.map((c) => (
            <button
              type="button"
              key={c.family}
              className={`chip${family === c.family ? ' chip-active' : ''}`}
              aria-pressed={family === c.family}
              onClick={() => setFamily(c.family)}
            >
              {c.family} ({c.count})
            </button>
          ))}
          <label className="chip chip-check">
            <input type="checkbox" checked={cachedOnly} onChange={(e) => setCachedOnly(e.target.checked)} /> cached only
          </label>
        </div>
        <div className="browser-list" role="listbox" aria-label="Models">
          {modelsLoading && models.length === 0 && <div className="empty-state small">Loading the model list…</div>}
          {modelsError && (
            <div className="inline-error" role="alert">
              Could not list models: {modelsError}{' '}
              <button type="button" className="btn btn-small" onClick={onRetry}>
                Retry
              </button>
            </div>
          )}
          {!modelsLoading && !modelsError && shown.length === 0 && (
            <div className="empty-state small">No models found matching “{query}”{family !== 'All' ? ` in ${family}` : ''}. You can still load it by id or path below.</div>
          )}
          {shown.map((m) => {
            const supported = m.backends.length === 0 || m.backends.includes(backend);
            return (
              <button
                type="button"
                role="option"
                aria-selected={m.id === selectedModel}
                key={m.id}
                className={`browser-item${m.id === selectedModel ? ' is-selected' : ''}${supported ? '' : ' is-unsupported'}`}
                onClick={() => onPick(m.id)}
                title={supported ? `Load ${m.id}` : `Listed for the ${m.backends.join(', ')} backend; the server will say whether ${backend} can run it`}
              >
                <span className="browser-item-main">
                  <span className="browser-item-name">{m.name}</span>
                  <span className="browser-item-id">{m.id}</span>
                </span>
                <span className="browser-item-tags">
                  {m.size && <span className="tag">{m.size}</span>}
                  {m.instruct && <span className="tag tag-instruct">instruct</span>}
                  {m.cached ? (
                    <span className="tag tag-cached" title="On this machine: loads without a download">
                      ✓ cached{m.bytes ? ` · ${formatBytes(m.bytes)}` : ''}
                    </span>
                  ) : (
                    <span className="tag tag-remote" title="Not on this machine: the server downloads it first">
                      download
                    </span>
                  )}
                  {!supported && <span className="tag tag-warn">{m.backends.join('/')} only</span>}
                  <span className="tag tag-family">{m.family}</span>
                </span>
              </button>
            );
          })}
        </div>
        <div className="browser-footer muted">
          Showing {shown.length} of {models.length} models
        </div>
        <form
          className="browser-custom"
          onSubmit={(e) => {
            e.preventDefault();
            submitCustom();
          }}
        >
          <label htmlFor="custom-model">Or load any model by Hub id (org/name[@revision]), local folder or .gguf path:</label>
          <div className="row">
            <input
              id="custom-model"
              className="input"
              placeholder="e.g. HuggingFaceTB/SmolLM2-360M-Instruct or /path/to/model"
              value={custom}
              onChange={(e) => setCustom(e.target.value)}
            />
            <button type="submit" className="btn btn-primary" disabled={!custom.trim()}>
              Load
            </button>
          </div>
        </form>
      </div>
    </Dialog>
  );
}
