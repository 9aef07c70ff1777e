// The searchable model browser: GET /models entries, family chips, a search over id, name,
// family and size, cached models marked, each model's memory need (those too big for the free
// memory marked, never hidden: memory can be freed), the weights choice of the load, and a
// free-text entry for any id, folder or .gguf path.
import { useMemo, useState } from 'react';
import type { Backend, ModelEntry, WeightsMode } from '../api/types';
import { familyCounts, filterModels, formatBytes } from '../lib/models';
import { isWeightsMode, memoryNeed, WEIGHTS_MODES } from '../lib/weights';
import { Dialog } from './Dialog';

interface Props {
  models: ModelEntry[];
  modelsError: string | null;
  modelsLoading: boolean;
  onRetry: () => void;
  backend: Backend;
  selectedModel: string;
  /** How the load holds the weights (the header's choice too). */
  weights: WeightsMode;
  onWeightsChange: (w: WeightsMode) => void;
  onPick: (id: string) => void;
  onClose: () => void;
}

export function ModelBrowser({ models, modelsError, modelsLoading, onRetry, backend, selectedModel, weights, onWeightsChange, onPick, onClose }: Props) {
  const [query, setQuery] = useState('');
  const [family, setFamily] = useState('All');
  const [cachedOnly, setCachedOnly] = useState(false);
  const [custom, setCustom] = useState('');

  const chips = useMemo(() => familyCounts(models), [models]);
  const shown = useMemo(
    () => filterModels(models, query, family).filter((m) => !cachedOnly || m.cached),
    [models, query, family, cachedOnly],
  );
  const tooBig = shown.filter((m) => m.fits === false).length;

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
            const need = memoryNeed(m);
            const title = supported ? `Load ${m.id}` : `Listed for the ${m.backends.join(', ')} backend; the server will say whether ${backend} can run it`;
            return (
              <button
                type="button"
                role="option"
                aria-selected={m.id === selectedModel}
                key={m.id}
                className={`browser-item${m.id === selectedModel ? ' is-selected' : ''}${supported ? '' : ' is-unsupported'}${need?.tooBig ? ' is-too-big' : ''}`}
                onClick={() => onPick(m.id)}
                title={need ? `${title}. ${need.title}` : title}
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
                  {need && (
                    <span className={`tag ${need.tooBig ? 'tag-too-big' : 'tag-memory'}`} title={need.title} data-testid="model-memory">
                      {need.tooBig && <span aria-hidden="true">⚠ </span>}
                      {need.text}
                    </span>
                  )}
                  {!supported && <span className="tag tag-warn">{m.backends.join('/')} only</span>}
                  <span className="tag tag-family">{m.family}</span>
                </span>
              </button>
            );
          })}
        </div>
        <div className="browser-footer">
          <span className="muted">
            Showing {shown.length} of {models.length} models
            {tooBig > 0 && (
              <span className="browser-too-big" data-testid="models-too-big">
                {' '}
                · {tooBig} too big for this machine’s free memory now
              </span>
            )}
          </span>
          <label className="browser-weights" title="How the load holds the weights; the header has the same choice">
            <span>Load with weights</span>
            <select
              aria-label="Weights of the load"
              value={weights}
              onChange={(e) => {
                if (isWeightsMode(e.target.value)) onWeightsChange(e.target.value);
              }}
            >
              {WEIGHTS_MODES.map((w) => (
                <option key={w.value} value={w.value} title={w.title}>
                  {w.label}
                </option>
              ))}
            </select>
          </label>
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
