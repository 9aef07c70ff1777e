// The header: backend, model (select + browser), chat template, lens type, status, sessions.
import type { LensType, ModelEntry, ModelStatus } from '../api/types';
import { backendLabel, groupsFor, shortModelName } from '../lib/models';
import { describeLoading } from '../lib/progress';

export const BROWSE_VALUE = '__browse_models__';

export const LENS_TYPES: { value: LensType; label: string }[] = [
  { value: 'block_output', label: 'Block Output (standard)' },
  { value: 'post_attention', label: 'Post-Attention' },
  { value: 'combined', label: 'Combined (most detailed)' },
];

interface HeaderProps {
  status: ModelStatus | null;
  connectionError: string | null;
  backend: 'custom' | 'hooked';
  onBackendChange: (b: 'custom' | 'hooked') => void;
  selectedModel: string;
  onModelChange: (id: string) => void;
  onOpenBrowser: () => void;
  models: ModelEntry[];
  useChat: boolean;
  onUseChatChange: (v: boolean) => void;
  chatAvailable: boolean;
  chatHint: string;
  lensType: LensType;
  onLensTypeChange: (l: LensType) => void;
  modelBusy: boolean;
  canSave: boolean;
  onSave: () => void;
  onLoad: () => void;
}

function StatusBadge({ status, connectionError, modelBusy }: { status: ModelStatus | null; connectionError: string | null; modelBusy: boolean }) {
  let cls = 'status-idle';
  let text = 'Not loaded';
  let title = '';
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
  } else if (status.loaded) {
    cls = 'status-ready';
    text = 'Ready';
    title = `${status.model_name} · ${status.num_layers} layers · ${status.num_heads} heads · hidden ${status.hidden_size} · vocab ${status.vocab_size}`;
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

export function Header(p: HeaderProps) {
  const groups = groupsFor(p.backend);
  const byId = new Map(p.models.map((m) => [m.id, m]));
  const listed = new Set(groups.flatMap((g) => g.models.map((m) => m.id)));
  const local = p.models.filter((m) => m.cached && !listed.has(m.id) && (m.backends.length === 0 || m.backends.includes(p.backend)));
  for (const m of local) listed.add(m.id);
  const current = p.selectedModel && !listed.has(p.selectedModel) ? p.selectedModel : null;
  const label = (id: string, fallback: string) => {
    const e = byId.get(id);
    return e?.cached ? `${fallback} ✓` : fallback;
  };
  const loadedInfo = p.status?.loaded
    ? `${p.status.num_layers ?? '?'} layers · ${p.status.num_heads ?? '?'} heads · d=${p.status.hidden_size ?? '?'}`
    : '';

  return (
    <header className="app-header">
      <div className="header-top">
        <div className="brand">
          <h1>LogitLens Advanced</h1>
          <span className="brand-sub">logitlens · look inside a language model, layer by layer</span>
        </div>
        <div className="header-right">
          <StatusBadge status={p.status} connectionError={p.connectionError} modelBusy={p.modelBusy} />
          <div className="session-buttons">
            <button type="button" className="btn btn-small" onClick={p.onSave} disabled={!p.canSave} title={p.canSave ? 'Save this run as a session' : 'Run the lens first'}>
              Save
            </button>
            <button type="button" className="btn btn-small" onClick={p.onLoad} title="Open a saved session">
              Load
            </button>
          </div>
        </div>
      </div>
      <div className="header-controls">
        <label className="field">
          <span>Backend</span>
          <select
            aria-label="Backend"
            value={p.backend}
            disabled={p.modelBusy}
            onChange={(e) => p.onBackendChange(e.target.value as 'custom' | 'hooked')}
          >
            <option value="custom">Custom (Llama / Qwen3)</option>
            <option value="hooked">Hooked (TransformerLens-style)</option>
          </select>
        </label>
        <div className="field field-model">
          <span>Model</span>
          <div className="model-row">
            <select
              aria-label="Model"
              value={p.selectedModel || ''}
              disabled={p.modelBusy}
              onChange={(e) => {
                if (e.target.value === BROWSE_VALUE) p.onOpenBrowser();
                else p.onModelChange(e.target.value);
              }}
              title={p.selectedModel}
            >
              {!p.selectedModel && <option value="">(no model)</option>}
              {current && (
                <optgroup label="Currently selected">
                  <option value={current}>{label(current, byId.get(current)?.name ?? shortModelName(current))}</option>
                </optgroup>
              )}
              {groups.map((g) => (
                <optgroup key={g.label} label={g.label}>
                  {g.models.map((m) => (
                    <option key={m.id} value={m.id}>
                      {label(m.id, m.label)}
                    </option>
                  ))}
                </optgroup>
              ))}
              {local.length > 0 && (
                <optgroup label="On this machine">
                  {local.map((m) => (
                    <option key={m.id} value={m.id}>
                      {label(m.id, m.name)}
                    </option>
                  ))}
                </optgroup>
              )}
              <optgroup label="More">
                <option value={BROWSE_VALUE}>Browse all models…</option>
              </optgroup>
            </select>
            <button type="button" className="btn btn-small" onClick={p.onOpenBrowser} disabled={p.modelBusy} title="Search models by name, family or size, or enter any Hub id, folder or .gguf path">
              Browse…
            </button>
          </div>
          {loadedInfo && <span className="field-note">{loadedInfo}</span>}
        </div>
        <label className={`field field-check${p.chatAvailable ? '' : ' is-disabled'}`} title={p.chatHint}>
          <input
            type="checkbox"
            checked={p.useChat && p.chatAvailable}
            disabled={!p.chatAvailable || p.modelBusy}
            onChange={(e) => p.onUseChatChange(e.target.checked)}
          />
          <span>Use chat template</span>
        </label>
        <label className="field">
          <span>Lens</span>
          <select aria-label="Lens type" value={p.lensType} onChange={(e) => p.onLensTypeChange(e.target.value as LensType)}>
            {LENS_TYPES.map((l) => (
              <option key={l.value} value={l.value}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <span className="sr-only">Backend: {backendLabel(p.backend)}</span>
    </header>
  );
}
