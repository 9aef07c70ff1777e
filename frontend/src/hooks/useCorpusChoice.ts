// A corpus for an SAE view: a .txt file read in (one document per line) or documents the model
// samples (how many); what the request's corpus fields are, or why they cannot be sent.
import { useState } from 'react';
import { errorMessage } from '../api/client';
import { readFileText } from '../lib/download';
import type { Result } from '../lib/interventions';
import { countDocuments } from '../lib/lensEval';
import { corpusFields } from '../lib/sae';

export interface CorpusChoiceState {
  kind: 'text' | 'sample';
  setKind: (k: 'text' | 'sample') => void;
  /** The text read from `file`. */
  text: string;
  file: string | null;
  documents: number;
  readFile: (f: File) => Promise<void>;
  /** Documents to sample, as typed. */
  sample: string;
  setSample: (v: string) => void;
  /** Why the file could not be read, or null. */
  error: string | null;
  fields: () => Result<{ corpus: string } | { sample: number }>;
}

export function useCorpusChoice(defaultSample = '8'): CorpusChoiceState {
  const [kind, setKind] = useState<'text' | 'sample'>('sample');
  const [text, setText] = useState('');
  const [file, setFile] = useState<string | null>(null);
  const [sample, setSample] = useState(defaultSample);
  const [error, setError] = useState<string | null>(null);
  const readFile = async (f: File) => {
    try {
      setText(await readFileText(f));
      setFile(f.name);
      setKind('text');
      setError(null);
    } catch (err) {
      setError(`Could not read ${f.name}: ${errorMessage(err)}`);
    }
  };
  return {
    kind,
    setKind,
    text,
    file,
    documents: countDocuments(text),
    readFile,
    sample,
    setSample,
    error,
    fields: () => corpusFields(kind === 'text' ? { kind, text } : { kind, count: sample }),
  };
}
