// The attention card: five views of attention[layer][head][query][key], layer/head sliders
// clamped to the displayed run, PNG export through the server, blocked entries marked. A run
// usually arrives with the mean over heads of each layer only; the single heads of a layer are
// then fetched from the server (useRunAttention) when a per-head view shows them.
import { useMemo, useRef, useState } from 'react';
import type { Interventions } from '../api/types';
import {
  ATTENTION_MODES,
  averageAll,
  clampIndex,
  hasHeads,
  layerMean,
  perLayerMeans,
  type AttentionMode,
  type AttentionTensor,
} from '../lib/attention';
import { blockedMasks, unionMasks } from '../lib/interventions';
import type { LayerHeads } from '../lib/runHeads';
import { shortModelName } from '../lib/models';
import { formatToken } from '../lib/tokens';
import { useHeatmapSaving, useRunAttention } from '../hooks/useRunAttention';
import { useWidth } from '../hooks/useWidth';
import { Heatmap } from './Heatmap';

interface Props {
  tensor: AttentionTensor | null;
  /** raw input tokens of the displayed run */
  tokens: string[] | null;
  /** the interventions the displayed run was computed with */
  interventions: Interventions;
  /** A generation's prompt token count: its negative token indices count back from the prompt's end. */
  promptTokens?: number;
  /** The server's id of the displayed run: single heads of a head-mean tensor are fetched by it. */
  runId?: number;
  modelName: string;
  text: string;
  onRerun: () => void;
  canRerun: boolean;
}

/** The original's PNG title prefix: model short name and the first 10 characters of the text. */
export function saveTitlePrefix(modelName: string, text: string): string {
  return `${shortModelName(modelName)}_${text.slice(0, 10).replace(/\s+/g, '_')}`;
}

export function AttentionPanel({ tensor, tokens, interventions, promptTokens, runId, modelName, text, onRerun, canRerun }: Props) {
  const [show, setShow] = useState(false);
  const [mode, setMode] = useState<AttentionMode>('all_average');
  const [layerState, setLayer] = useState(0);
  const [headState, setHead] = useState(0);
  const [contrast, setContrast] = useState<'linear' | 'sqrt'>('linear');
  const cardRef = useRef<HTMLElement>(null);
  // The card is always mounted; its content box is the room the heatmaps have.
  const width = Math.max(280, useWidth(cardRef, 940));

  const T = tensor?.T ?? 0;
  const layer = tensor ? clampIndex(layerState, tensor.layers) : 0;
  const perHead = mode === 'specific' || mode === 'specific_grid';
  const localHeads = !tensor || hasHeads(tensor);
  const { heads: remote, retry } = useRunAttention(runId, tensor?.layerIds[layer] ?? layer, show && !localHeads && perHead);
  // The tensor holding the single heads of `layer`, and that layer's index in it.
  const headSource = !tensor ? null : localHeads ? { t: tensor, l: layer } : remote?.status === 'ready' ? { t: remote.tensor, l: 0 } : null;
  const head = headSource ? clampIndex(headState, headSource.t.heads) : 0;
  const display = useMemo(() => {
    const raw = tokens && tokens.length === T ? tokens : Array.from({ length: T }, (_, i) => String(i));
    return raw.map((t) => formatToken(t));
  }, [tokens, T]);
  const masks = useMemo(() => (tensor ? blockedMasks(interventions, tensor.layers, T, promptTokens) : []), [tensor, interventions, T, promptTokens]);
  const allLayers = useMemo(() => (tensor ? Array.from({ length: tensor.layers }, (_, i) => i) : []), [tensor]);

  const view = useMemo(() => {
    if (!tensor || !show) return null;
    switch (mode) {
      case 'all_average':
        return { kind: 'single' as const, m: averageAll(tensor), title: 'Average attention (all layers & heads)', suffix: '_AvgAll', mask: unionMasks(masks, allLayers) };
      case 'layer_mean':
        return { kind: 'single' as const, m: layerMean(tensor, layer), title: `Layer ${layer} mean attention`, suffix: `_L${layer}_Mean`, mask: masks[layer] ?? null };
      case 'specific':
        if (!headSource) return null;
        return { kind: 'single' as const, m: headSource.t.data[headSource.l][head], title: `Layer ${layer}, head ${head}`, suffix: `_L${layer}_H${head}`, mask: masks[layer] ?? null };
      case 'specific_grid':
        if (!headSource) return null;
        return {
          kind: 'grid' as const,
          panels: headSource.t.data[headSource.l].map((m, h) => ({ m, title: `Head ${h}`, suffix: `_L${layer}_H${h}`, mask: masks[layer] ?? null })),
          caption: `Layer ${layer}: all ${headSource.t.heads} heads`,
          suffix: `_L${layer}_AllHeads`,
          gridType: 'head_grid' as const,
          saveLabel: 'Save all heads',
        };
      case 'layer_mean_grid':
        return {
          kind: 'grid' as const,
          panels: perLayerMeans(tensor).map((m, l) => ({ m, title: `Layer ${l}`, suffix: `_L${l}_Mean`, mask: masks[l] ?? null })),
          caption: 'Mean of all heads for each layer',
          suffix: '_AllLayers_Mean',
          gridType: 'layer_grid' as const,
          saveLabel: 'Save all layers',
        };
    }
  }, [tensor, show, mode, layer, head, headSource?.t, headSource?.l, masks, allLayers]);

  const prefix = saveTitlePrefix(modelName, text);
  const { saving, lastSaved, saveOne, saveGrid } = useHeatmapSaving(display, T);

  const usesLayer = mode === 'layer_mean' || mode === 'specific' || mode === 'specific_grid';
  const columns = Math.max(1, Math.floor((width + 14) / 330));
  const panelWidth = Math.floor((width + 14) / columns) - 14 - 22;
  const gamma = contrast === 'sqrt' ? 0.5 : 1;

  return (
    <section className="card attention-card" aria-label="Attention visualization" ref={cardRef}>
      <div className="section-head">
        <h2>Attention</h2>
        <label className="check-row inline">
          <input type="checkbox" checked={show} onChange={(e) => setShow(e.target.checked)} aria-label="Show attention" />
          <span>Show attention</span>
        </label>
      </div>
      {!show ? (
        <p className="muted small">
          {!tensor
            ? 'Attention is not in the displayed results.'
            : hasHeads(tensor)
              ? `${tensor.layers} layers × ${tensor.heads} heads × ${T}×${T}. Tick “Show attention” to explore it.`
              : `${tensor.layers} layers × ${T}×${T}, each the mean of its heads; single heads are fetched when shown. Tick “Show attention” to explore it.`}
        </p>
      ) : !tensor ? (
        <div className="empty-state">
          <p>Attention data is not available in the displayed results (for example a session loaded for visualization only).</p>
          <button type="button" className="btn btn-secondary" onClick={onRerun} disabled={!canRerun}>
            Re-run inference to fetch attention
          </button>
        </div>
      ) : (
        <>
          <div className="attention-controls">
            <label className="field">
              <span>View</span>
              <select aria-label="Attention view" value={mode} onChange={(e) => setMode(e.target.value as AttentionMode)}>
                {ATTENTION_MODES.map((m) => (
                  <option key={m.value} value={m.value}>
                    {m.label}
                  </option>
                ))}
              </select>
            </label>
            {usesLayer && (
              <label className="field slider-field">
                <span>
                  Layer <strong data-testid="layer-value">{layer}</strong> / {tensor.layers - 1}
                </span>
                <input type="range" aria-label="Attention layer slider" min={0} max={tensor.layers - 1} value={layer} onChange={(e) => setLayer(Number(e.target.value))} />
              </label>
            )}
            <label className="field">
              <span>Colours</span>
              <select aria-label="Colour scale" value={contrast} onChange={(e) => setContrast(e.target.value as 'linear' | 'sqrt')}>
                <option value="linear">Linear</option>
                <option value="sqrt">Square root (lift small weights)</option>
              </select>
            </label>
            {mode === 'specific' && headSource && (
              <label className="field slider-field">
                <span>
                  Head <strong data-testid="head-value">{head}</strong> / {headSource.t.heads - 1}
                </span>
                <input
                  type="range"
                  aria-label="Attention head slider"
                  min={0}
                  max={headSource.t.heads - 1}
                  value={head}
                  onChange={(e) => setHead(Number(e.target.value))}
                />
              </label>
            )}
            {view?.kind === 'grid' && (
              <button
                type="button"
                className="btn btn-secondary"
                disabled={saving !== null}
                onClick={() => void saveGrid(view.panels.map((p) => p.m), `${prefix}${view.suffix}`, view.gridType)}
              >
                {saving === 'grid' ? 'Saving…' : view.saveLabel}
              </button>
            )}
          </div>
          <p className="muted small attention-hint">
            Rows are queries (the attending token), columns are keys. Hover, or focus a heatmap and use the arrow keys, to read a value.
            {masks.some(Boolean) && ' Entries outlined and hatched in red were blocked by this run’s attention interventions.'}
          </p>
          {lastSaved && (
            <p className="saved-path small" data-testid="saved-path">
              Saved on the server: <code>{lastSaved}</code>
            </p>
          )}
          <div className="attention-body">
            {perHead && !headSource && (
              <HeadsStatus
                layer={layer}
                runKnown={runId !== undefined}
                state={remote}
                onRerun={onRerun}
                canRerun={canRerun}
                onRetry={retry}
              />
            )}
            {view?.kind === 'single' && (
              <Heatmap
                matrix={view.m}
                T={T}
                tokens={display}
                title={view.title}
                maxWidth={width - 22}
                mask={view.mask}
                maskLayers={mode === 'all_average' ? tensor.layers : 1}
                gamma={gamma}
                testId="heatmap-main"
                saving={saving === 'single'}
                onSave={() => void saveOne('single', view.m, `${prefix}${view.suffix}`)}
              />
            )}
            {view?.kind === 'grid' && (
              <>
                <p className="grid-caption">{view.caption}</p>
                <div className="heatmap-grid">
                  {view.panels.map((p, i) => (
                    <Heatmap
                      key={i}
                      small
                      matrix={p.m}
                      T={T}
                      tokens={display}
                      title={p.title}
                      maxWidth={panelWidth}
                      mask={p.mask}
                      gamma={gamma}
                      onOpen={() => {
                        if (mode === 'specific_grid') {
                          setHead(i);
                          setMode('specific');
                        } else {
                          setLayer(i);
                          setMode('layer_mean');
                        }
                      }}
                      testId={`heatmap-panel-${i}`}
                      saving={saving === `panel${i}`}
                      onSave={() => void saveOne(`panel${i}`, p.m, `${prefix}${p.suffix}`)}
                    />
                  ))}
                </div>
              </>
            )}
          </div>
        </>
      )}
    </section>
  );
}

interface HeadsStatusProps {
  layer: number;
  runKnown: boolean;
  state: LayerHeads | null;
  onRerun: () => void;
  canRerun: boolean;
  onRetry: () => void;
}

/** What a per-head view shows until the heads of its layer are there. */
function HeadsStatus({ layer, runKnown, state, onRerun, canRerun, onRetry }: HeadsStatusProps) {
  if (!runKnown || state?.status === 'error') {
    const gone = !runKnown || (state?.status === 'error' && state.gone);
    const message = state?.status === 'error' ? state.message : 'The server did not identify this run, so its single heads cannot be fetched; run again to see heads';
    return (
      <div className="empty-state small heads-status" role="alert" data-testid="heads-error">
        <p>{message}</p>
        {gone ? (
          <button type="button" className="btn btn-secondary" onClick={onRerun} disabled={!canRerun}>
            Run again
          </button>
        ) : (
          <button type="button" className="btn btn-secondary" onClick={onRetry}>
            Try again
          </button>
        )}
      </div>
    );
  }
  return (
    <div className="empty-state small heads-status" role="status" data-testid="heads-loading">
      <span className="spinner" aria-hidden="true" /> Loading the heads of layer {layer}…
    </div>
  );
}
