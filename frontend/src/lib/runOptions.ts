// What a run asks for besides the text, the interventions and the lens type: which lens draws the
// rows, a baseline to compare with, tracked tokens, the activation analysis; the request fields
// they become, and whether a request was made with them.
import type { Lens, RunRequest, TrackToken } from '../api/types';

export interface RunOptionsValue {
  compare: boolean;
  analysis: boolean;
  track: TrackToken[];
  /** The lens chosen to draw the rows (absent: the logit lens); used when a tuned lens is attached. */
  lens?: Lens;
}

/** The run-option fields of a request, as they were sent (absent when off). */
export function optionFields(o: RunOptionsValue): Pick<RunRequest, 'compare' | 'track_tokens' | 'analysis'> {
  return {
    ...(o.compare ? { compare: true } : {}),
    ...(o.track.length > 0 ? { track_tokens: o.track } : {}),
    ...(o.analysis ? { analysis: true } : {}),
  };
}

/** Whether `req` was made with these compare, analysis and tracked tokens. */
export function sameOptions(req: RunRequest, o: RunOptionsValue): boolean {
  return (
    !!req.compare === o.compare &&
    !!req.analysis === o.analysis &&
    JSON.stringify(req.track_tokens ?? []) === JSON.stringify(o.track)
  );
}
