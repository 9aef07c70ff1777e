// The server's status (GET /model_status, /events) is a model in service, described, or only the
// service state: `servingModel` tells them apart.
import type { ModelStatus, ServingStatus } from '../api/types';

/** The status with its model's description when a model is in service, else null. */
export function servingModel(s: ModelStatus | null | undefined): ServingStatus | null {
  return s?.loaded && 'model_name' in s ? s : null;
}
