// A refused request in words, with what to do about it: shared by the views that run something on
// the server (an evaluation, a sweep, an attribution, a generation).
import { ApiError, errorMessage } from '../api/client';
import { formatClock } from './time';

/**
 * The words for a refused evaluation or sweep (`what`: "the evaluation"): the server's detail,
 * with what to do about a model still loading (409), no model (400) or a busy server (503).
 */
export function refusalMessage(err: unknown, what: string): string {
  const msg = errorMessage(err);
  if (!(err instanceof ApiError)) return msg;
  if (err.status === 409) return `${msg}: run ${what} once the model is ready.`;
  if (err.status === 400 && /model not loaded/i.test(msg)) return `${msg}: choose a model in the header to load one.`;
  if (err.status === 503 && err.retryAfter !== null) return `${msg.replace(/[.\s]+$/, '')}. Run it again after ${formatClock(Date.now() + err.retryAfter * 1000)}.`;
  // Anything else (a limit, the memory budget, texts that do not pair) is the server's detail as it is.
  return msg;
}
