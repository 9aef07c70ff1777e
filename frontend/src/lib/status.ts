// The server's status (GET /model_status, /events) is a model in service, described, or only the
// service state: `servingModel` tells them apart, and `modelKey` tells one model in service from another.
import type { ModelStatus, ServingStatus } from '../api/types';

/** The status with its model's description when a model is in service, else null. */
export function servingModel(s: ModelStatus | null | undefined): ServingStatus | null {
  return s?.loaded && 'model_name' in s ? s : null;
}

/**
 * Identifies the model in service, as loaded (the same folder loaded again with other weights is
 * another model): what is asked of the server about a model is asked again when it changes.
 */
export function modelKey(m: ServingStatus | null): string | null {
  return m ? `${m.backend}|${m.model_name}|${m.weights.form}|${m.weights.kinds}` : null;
}
