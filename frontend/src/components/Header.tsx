// The header: backend, weights, model (select + browser), the lenses attached to it, chat
// template, lens type, status, sessions; under the model, the loaded model's sizes and how its
// weights are held.
import type { LensType, ModelEntry, ModelStatus } from '../api/types';
import type { ModelLoader } from '../hooks/useModelLoader';
import type { ModelsState } from '../hooks/useModels';
import { isLensType, LENS_TYPES } from '../lib/lensTypes';
import { BACKEND_OPTIONS, backendLabel, modelGroups, normalizeBackend, shortModelName } from '../lib/models';
import { describeLoading } from '../lib/progress';
import { servingModel } from '../lib/status';
import { isWeightsMode, memoryNeed, WEIGHTS_MODES, weightsDetail, weightsForm, weightsLine } from '../lib/weights';
import { LensFileField } from './LensFileField';
import { SaeCard } from './SaeCard';
import type { SaesState } from '../hooks/useSaes';

export const BROWSE_VALUE = '__browse_models__';

/** A /models entry in the select: its name, ✓ when it loads without a download, and a word when it does not fit. */
const entryLabel = (m: ModelEntry) => `${m.name}${m.cached ? ' ✓' : ''}${m.fits === false ? ' (too big for free memory)' : ''}`;

/** A /models entry's tooltip in the select: its id and memory need. */
const entryTitle = (m: ModelEntry) => {
  const need = memoryNeed(m);
  return need ? `${m.id} · ${need.title}` : m.id;
};

/** The weights select: a load's choice, and a reload when the model in service holds them otherwise. */
function WeightsField({ loader }: { loader: ModelLoader }) {
  const choice = WEIGHTS_MODES.find((w) => w.value === loader.weights);
  return (
    <div className="field field-weights">
      <span>Weights</span>
      <div className="model-row">
        <select
          aria-label="Weights"
          value={loader.weights}
          disabled={loader.modelBusy}
          title={`How the next load holds the weights: ${choice?.title ?? loader.weights}`}
          onChange={(e) => {
            if (isWeightsMode(e.target.value)) loader.setWeights(e.target.value);
          }}
        >
          {WEIGHTS_MODES.map((w) => (
            <option key={w.value} value={w.value} title={w.title}>
              {w.label}
            </option>
          ))}
        </select>
        {loader.weightsDiffer && loader.model && (
          <button
            type="button"
            className="btn btn-small"
            onClick={loader.reloadWeights}
            disabled={loader.modelBusy}
            title={`${loader.model.model_name} holds its weights as ${weightsForm(loader.model.weights)}: load it again with weights “${loader.weights}”`}
          >
            Reload as {loader.weights}
          </button>
        )}
      </div>
    </div>
  );
}

interface HeaderProps {
  /** Status, backend, model and chat template, and the actions that change them. */
  loader: ModelLoader;
  /** GET /models: the model select's entries. */
  models: ModelsState;
  /** Which states of each layer become rows of the grid. */
  lensType: { value: LensType; onChange: (l: LensType) => void };
  onOpenBrowser: () => void;
  session: { canSave: boolean; onSave: () => void; onLoad: () => void };
  /** The SAEs attached and the field that attaches one, beside the lenses. */
  saes?: SaesState;
}

function StatusBadge({ status, connectionError, modelBusy }: { status: ModelStatus | null; connectionError: string | null; modelBusy: boolean }) {
  let cls = 'status-idle';
  let text = 'Not loaded';
  let title = '';
  const model = servingModel(status);
  if (connectionError && !status) {
    cls = 'status-error';
    text = 'Server unreachable';
    title = connectionError;
  } else if (!status) {
    text = 'Connecting…';
  } else if (modelBusy || status.status === 'loading') {
    cls = 'status-loading';
    const f = status.loading ? describeLoading(status.loading).fraction : null;
    text = `Loading${f !== null ? ` ${Math.round(f * 100)}%` : '…'}`;
  } else if (model) {
    cls = 'status-ready';
    text = 'Ready';
    const weights = weightsLine(model.weights);
    title = `${model.model_name} · ${model.num_layers} layers · ${model.num_heads} heads · hidden ${model.hidden_size} · vocab ${model.vocab_size}${weights ? ` · ${weights}` : ''}`;
  } else if (status.last_error) {
    cls = 'status-error';
    text = 'Load failed';
    title = status.last_error;
  }
  return (
    <div className={`status-badge ${cls}`} title={title} data-testid="model-status">
      <span className="status-dot" aria-hidden="true" />
      <span>Status: {text}</span>
    </div>
  );
}

export function Header({ loader, models, lensType, onOpenBrowser, session, saes }: HeaderProps) {
  const { status, model, backend, selectedModel, modelBusy } = loader;
  const groups = modelGroups(models.models, backend);
  const listed = new Set(groups.flatMap((g) => g.models.map((m) => m.id)));
  // The loaded (or chosen) model is shown even when the list lacks it, or has not come yet.
  const current = selectedModel && !listed.has(selectedModel) ? selectedModel : null;
  const currentEntry = current ? models.models.find((m) => m.id === current) : undefined;
  const listMissing = models.models.length === 0 && (models.loading || models.error !== null);
  const loadedInfo = model ? `${model.num_layers} layers · ${model.num_heads} heads · d=${model.hidden_size}` : '';
  const weightsInfo = model ? weightsLine(model.weights) : '';

  return (
    <header className="app-header">
      <div className="header-top">
        <div className="brand">
          <h1>LogitLens Advanced</h1>
          <span className="brand-sub">logitlens · look inside a language model, layer by layer</span>
        </div>
        <div className="header-right">
          <StatusBadge status={status} connectionError={loader.connectionError} modelBusy={modelBusy} />
          <div className="session-buttons">
            <button
              type="button"
              className="btn btn-small"
              onClick={session.onSave}
              disabled={!session.canSave}
              title={session.canSave ? 'Save this run as a session' : 'Run the lens first'}
            >
              Save
            </button>
            <button type="button" className="btn btn-small" onClick={session.onLoad} title="Open a saved session">
              Load
            </button>
          </div>
        </div>
      </div>
      <div className="header-controls">
        <label className="field">
          <span>Backend</span>
          <select aria-label="Backend" value={backend} disabled={modelBusy} onChange={(e) => loader.selectBackend(normalizeBackend(e.target.value))}>
            {BACKEND_OPTIONS.map((b) => (
              <option key={b.value} value={b.value}>
                {b.label}
              </option>
            ))}
          </select>
        </label>
        <WeightsField loader={loader} />
        <div className="field field-model">
          <span>Model</span>
          <div className="model-row">
            <select
              aria-label="Model"
              value={selectedModel || ''}
              disabled={modelBusy}
              onChange={(e) => {
                if (e.target.value === BROWSE_VALUE) onOpenBrowser();
                else loader.selectModel(e.target.value);
              }}
              title={selectedModel}
            >
              {!selectedModel && <option value="">(no model)</option>}
              {current && (
                <optgroup label="Currently selected">
                  <option value={current}>{currentEntry ? entryLabel(currentEntry) : shortModelName(current)}</option>
                </optgroup>
              )}
              {listMissing && (
                <option value="" disabled>
                  {models.error ? 'Model list unavailable' : 'Loading the model list…'}
                </option>
              )}
              {groups.map((g) => (
                <optgroup key={g.family} label={g.family}>
                  {g.models.map((m) => (
                    <option key={m.id} value={m.id} title={entryTitle(m)} className={m.fits === false ? 'option-too-big' : undefined}>
                      {entryLabel(m)}
                    </option>
                  ))}
                </optgroup>
              ))}
              <optgroup label="More">
                <option value={BROWSE_VALUE}>Browse all models…</option>
              </optgroup>
            </select>
            <button
              type="button"
              className="btn btn-small"
              onClick={onOpenBrowser}
              disabled={modelBusy}
              title="Search models by name, family or size, or enter any Hub id, folder or .gguf path"
            >
              Browse…
            </button>
          </div>
          {models.error && (
            <span className="field-note models-error" role="alert" data-testid="models-error">
              Model list unavailable: {models.error}{' '}
              <button type="button" className="btn btn-small" onClick={() => void models.refresh()} disabled={models.loading}>
                Retry
              </button>
            </span>
          )}
          {loadedInfo && <span className="field-note">{loadedInfo}</span>}
          {model && weightsInfo && (
            <span className="field-note weights-note" data-testid="model-weights" title={weightsDetail(model)}>
              {weightsInfo}
            </span>
          )}
          <LensFileField model={model} busy={modelBusy} onAttach={loader.attachLens} />
          {saes && <SaeCard saes={saes} />}
        </div>
        <label className={`field field-check${loader.chatAvailable ? '' : ' is-disabled'}`} title={loader.chatHint}>
          <input
            type="checkbox"
            checked={loader.useChat && loader.chatAvailable}
            disabled={!loader.chatAvailable || modelBusy}
            onChange={(e) => loader.setUseChat(e.target.checked)}
          />
          <span>Use chat template</span>
        </label>
        <label className="field">
          <span>Lens type</span>
          <select
            aria-label="Lens type"
            value={lensType.value}
            onChange={(e) => {
              if (isLensType(e.target.value)) lensType.onChange(e.target.value);
            }}
          >
            {LENS_TYPES.map((l) => (
              <option key={l.value} value={l.value}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <span className="sr-only">Backend: {backendLabel(backend)}</span>
    </header>
  );
}
