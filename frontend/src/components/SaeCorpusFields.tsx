// The corpus of an SAE view: a .txt file (one document per line) or documents the model samples.
import type { CorpusChoiceState } from '../hooks/useCorpusChoice';
import { FileButton } from './FileButton';

export function SaeCorpusFields({ c, label }: { c: CorpusChoiceState; label: string }) {
  return (
    <div className="eval-form-row sae-corpus">
      <label className="check-row inline">
        <input type="radio" name={`${label}-kind`} aria-label={`${label}: sample documents`} checked={c.kind === 'sample'} onChange={() => c.setKind('sample')} />
        <span>Sample</span>
      </label>
      <input
        className="input input-narrow"
        aria-label={`${label}: documents to sample`}
        inputMode="numeric"
        value={c.sample}
        disabled={c.kind !== 'sample'}
        title="Documents the model writes from its BOS token (seed 0)"
        onChange={(e) => c.setSample(e.target.value)}
      />
      <span className="muted small">documents, or</span>
      <label className="check-row inline">
        <input type="radio" name={`${label}-kind`} aria-label={`${label}: a text file`} checked={c.kind === 'text'} disabled={!c.file} onChange={() => c.setKind('text')} />
        <span>File</span>
      </label>
      <FileButton label="Choose a .txt file…" accept=".txt,text/plain" ariaLabel={`${label} file`} onFile={(f) => void c.readFile(f)} />
      {c.file && (
        <span className="muted small" data-testid={`${label.toLowerCase().replace(/\s+/g, '-')}-documents`}>
          {c.documents} document{c.documents === 1 ? '' : 's'} · from {c.file}
        </span>
      )}
      {c.error && (
        <span className="inline-error small" role="alert">
          {c.error}
        </span>
      )}
    </div>
  );
}
