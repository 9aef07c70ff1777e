// What a run asks for besides the text, the interventions and the lens type: which lens draws the
// rows, a baseline to compare with, tracked tokens, the activation analysis; the request fields
// they become, and whether a request was made with them; with SAEs attached, their features.
import type { Lens, RunRequest, TrackToken } from '../api/types';

export interface RunOptionsValue {
  compare: boolean;
  analysis: boolean;
  track: TrackToken[];
  /** The lens chosen to draw the rows (absent: the logit lens); used when a tuned lens is attached. */
  lens?: Lens;
  /** Read the attached SAEs' features at every position (their rows in the grid). */
  sae?: boolean;
  /** Features listed a position (0: every active one). */
  saeTopK?: number;
}

/** The server's default number of features a position. */
export const DEFAULT_SAE_TOP_K = 8;

/** The SAE fields of a request: only with SAEs attached (`attached`), and the option on. */
export function saeFields(o: RunOptionsValue, attached: number): Pick<RunRequest, 'sae' | 'sae_top_k'> {
  return o.sae && attached > 0 ? { sae: true, sae_top_k: o.saeTopK ?? DEFAULT_SAE_TOP_K } : {};
}

/** The run-option fields of a request, as they were sent (absent when off). */
export function optionFields(o: RunOptionsValue): Pick<RunRequest, 'compare' | 'track_tokens' | 'analysis'> {
  return {
    ...(o.compare ? { compare: true } : {}),
    ...(o.track.length > 0 ? { track_tokens: o.track } : {}),
    ...(o.analysis ? { analysis: true } : {}),
  };
}

/** Whether `req` was made with these compare, analysis, tracked tokens and SAE features (`attached`: SAEs attached). */
export function sameOptions(req: RunRequest, o: RunOptionsValue, attached = 0): boolean {
  const sae = saeFields(o, attached);
  return (
    (req.sae ? (req.sae_top_k ?? DEFAULT_SAE_TOP_K) : null) === (sae.sae ? sae.sae_top_k : null) &&
    !!req.compare === o.compare &&
    !!req.analysis === o.analysis &&
    JSON.stringify(req.track_tokens ?? []) === JSON.stringify(o.track)
  );
}
