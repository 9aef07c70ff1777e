import { useCallback, useState } from 'react';
import { useModels } from './hooks/useModels';
import { useModelLoader } from './hooks/useModelLoader';
import { useRun } from './hooks/useRun';
import { useSessions } from './hooks/useSessions';
import { useRunHistory } from './hooks/useRunHistory';
import { useLensEval } from './hooks/useLensEval';
import { usePatching } from './hooks/usePatching';
import { useAttribution } from './hooks/useAttribution';
import { useJacobianLens } from './hooks/useJacobianLens';
import { useJlensForm } from './hooks/useJlensForm';
import { useSaes } from './hooks/useSaes';
import { useSaeForm } from './hooks/useSaeForm';
import { useSaeFeature } from './hooks/useSaeFeature';
import { useSaeEval } from './hooks/useSaeEval';
import { NotificationProvider } from './components/Notifications';
import { Header } from './components/Header';
import { LoadProgress } from './components/LoadProgress';
import { Controls } from './components/Controls';
import { ResultsPanel, RunDetails } from './components/ResultsPanel';
import { ModelBrowser } from './components/ModelBrowser';
import { SaveSessionDialog, SessionsDialog } from './components/SessionDialogs';
import { SessionDiffCard } from './components/SessionDiff';
import { RunHistoryCard } from './components/RunHistory';
import { RunCompareCard } from './components/RunCompare';
import { LensQualityCard } from './components/LensQuality';
import { JacobianLensCard } from './components/JacobianLens';
import { PatchingCard } from './components/Patching';
import { AttributionCard } from './components/Attribution';
import { SaeFeatureCard } from './components/SaeFeatureCard';
import { SaeQualityCard } from './components/SaeQuality';

type DialogName = 'save' | 'sessions' | 'browser';

function Main() {
  const [dialog, setDialog] = useState<DialogName | null>(null);
  const closeDialog = useCallback(() => setDialog(null), []);
  const models = useModels();
  const loader = useModelLoader(models);
  const run = useRun(loader);
  const sessions = useSessions(run, loader, { onShown: closeDialog });
  const history = useRunHistory(run);
  const lensEval = useLensEval(loader);
  const patching = usePatching(loader);
  const attribution = useAttribution(run, loader);
  const jlensForm = useJlensForm(loader);
  const jacobianLens = useJacobianLens(loader);
  const saes = useSaes(loader);
  const saeForm = useSaeForm(loader);
  const saeFeature = useSaeFeature(loader, run);
  const saeEval = useSaeEval(loader);

  const openBrowser = () => {
    setDialog('browser');
    if (models.models.length === 0) void models.refresh();
  };
  const openSessions = () => {
    setDialog('sessions');
    void sessions.refresh();
  };
  const pickModel = (id: string) => {
    if (!id) return;
    closeDialog();
    loader.selectModel(id);
  };

  return (
    <div className="app-container">
      <Header
        loader={loader}
        models={models}
        lensType={{ value: run.inputs.lensType, onChange: run.inputs.setLensType }}
        onOpenBrowser={openBrowser}
        session={{ canSave: !!run.view, onSave: () => setDialog('save'), onLoad: openSessions }}
        saes={saes}
      />
      {loader.connectionError && (
        <div className="banner banner-error" role="alert">
          Cannot reach the logitlens server: {loader.connectionError}. Retrying…
        </div>
      )}
      {loader.modelBusy && <LoadProgress loading={loader.status?.loading} requested={loader.pendingLoad} />}
      {loader.lastError && (
        <div className="banner banner-error" role="alert">
          <span>The last model load failed: {loader.lastError}</span>
          <button type="button" className="icon-btn" aria-label="Dismiss" onClick={loader.dismissLastError}>
            ×
          </button>
        </div>
      )}
      <main className="main-grid">
        <Controls
          inputs={run.inputs}
          scope={run.scope}
          task={run.task}
          actions={{ run: () => void run.runInference(), generate: () => void run.generate(), disabled: run.disabled }}
          receipts={run.notes.receipts}
          jlens={jlensForm}
          sae={saeForm}
        />
        <ResultsPanel
          run={run}
          attribution={attribution}
          lensVector={jacobianLens.attached ? jacobianLens.showVector : undefined}
          saeActions={{ feature: saeFeature.open, use: saeForm.fill }}
        />
      </main>
      <RunHistoryCard h={history} />
      {history.comparison && <RunCompareCard key={`${history.comparison.a.id}:${history.comparison.b.id}`} pair={history.comparison} onClose={history.closeCompare} />}
      {sessions.diff && <SessionDiffCard view={sessions.diff} onClose={sessions.closeDiff} />}
      <AttributionCard at={attribution} />
      <SaeFeatureCard f={saeFeature} />
      <RunDetails run={run} />
      <LensQualityCard ev={lensEval} />
      <SaeQualityCard ev={saeEval} />
      <JacobianLensCard jl={jacobianLens} />
      <PatchingCard p={patching} />
      {dialog === 'browser' && (
        <ModelBrowser
          models={models.models}
          modelsError={models.error}
          modelsLoading={models.loading}
          onRetry={() => void models.refresh()}
          backend={loader.backend}
          selectedModel={loader.selectedModel}
          weights={loader.weights}
          onWeightsChange={loader.setWeights}
          onPick={pickModel}
          onClose={closeDialog}
        />
      )}
      {dialog === 'save' && <SaveSessionDialog onSave={sessions.save} onClose={closeDialog} suggestion="" />}
      {dialog === 'sessions' && (
        <SessionsDialog
          sessions={sessions.list}
          loading={sessions.loading}
          error={sessions.error}
          onRefresh={() => void sessions.refresh()}
          vizOnly={sessions.vizOnly}
          onVizOnlyChange={sessions.setVizOnly}
          onLoad={(s) => void sessions.load(s)}
          onDelete={sessions.remove}
          onCompare={sessions.compare}
          onClose={closeDialog}
          busy={sessions.busy}
        />
      )}
    </div>
  );
}

export default function App() {
  return (
    <NotificationProvider>
      <Main />
    </NotificationProvider>
  );
}
