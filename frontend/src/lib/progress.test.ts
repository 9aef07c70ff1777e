import { describe, expect, it } from 'vitest';
import { describeLoading, describeRunProgress, parseRunProgress } from './progress';

describe('describeLoading', () => {
  it('downloading: file, bytes and fraction', () => {
    const v = describeLoading({ model_name: 'm', backend: 'custom', stage: 'downloading', file: 'model.safetensors', bytes: 49_000_000, total_bytes: 98_000_000, progress: null });
    expect(v.stage).toBe('Downloading');
    expect(v.detail).toBe('model.safetensors · 49.0 MB / 98.0 MB');
    expect(v.fraction).toBeCloseTo(0.5);
  });
  it('loading tensors: x / y and the server progress', () => {
    const v = describeLoading({ model_name: 'm', backend: 'custom', stage: 'loading_tensors', tensors_done: 77, tensors_total: 272, progress: 0.283 });
    expect(v.stage).toBe('Loading tensors');
    expect(v.detail).toBe('tensors 77 / 272');
    expect(v.fraction).toBeCloseTo(0.283);
  });
  it('all tensors read: an indeterminate "preparing" phase', () => {
    const v = describeLoading({ model_name: 'm', backend: 'custom', stage: 'loading_tensors', tensors_done: 272, tensors_total: 272, progress: 1 });
    expect(v.stage).toBe('Preparing model');
    expect(v.fraction).toBeNull();
  });
  it('resolving has no fraction', () => {
    expect(describeLoading({ model_name: 'm', backend: 'custom', stage: 'resolving' })).toEqual({ stage: 'Resolving', detail: '', fraction: null });
    expect(describeLoading(null).fraction).toBeNull();
  });
});

describe('run progress', () => {
  it('reads a "run" event of /events, and skips what is not one', () => {
    expect(parseRunProgress('{"request":"abc","stage":"forward","done":12,"total":30}')).toEqual({ request: 'abc', stage: 'forward', done: 12, total: 30 });
    // A run of a client that sent no request id.
    expect(parseRunProgress('{"stage":"lens","done":0,"total":4}')).toEqual({ request: null, stage: 'lens', done: 0, total: 4 });
    for (const bad of ['', 'nope', 'null', '[]', '{"request":"a","stage":"backward","done":1,"total":2}', '{"request":"a","stage":"forward","done":"1","total":2}', '{"request":7,"stage":"forward","done":1,"total":2}']) {
      expect(parseRunProgress(bad)).toBeNull();
    }
  });

  it('says what the run is doing, with a bar for layers and lens states', () => {
    expect(describeRunProgress({ request: 'a', stage: 'forward', done: 12, total: 30 })).toEqual({ text: 'Layer 12 of 30', value: { now: 12, max: 30 } });
    expect(describeRunProgress({ request: 'a', stage: 'lens', done: 3, total: 31 })).toEqual({ text: 'Lens 3 of 31', value: { now: 3, max: 31 } });
    expect(describeRunProgress({ request: 'a', stage: 'queued', done: 2, total: 3 })).toEqual({ text: 'Waiting for 2 runs ahead…', value: null });
    expect(describeRunProgress({ request: 'a', stage: 'queued', done: 1, total: 2 }).text).toBe('Waiting for 1 run ahead…');
    expect(describeRunProgress({ request: 'a', stage: 'queued', done: 0, total: 1 }).text).toBe('Waiting for the run in progress to finish…');
    // Nothing heard yet (or no event stream): indeterminate.
    expect(describeRunProgress(null)).toEqual({ text: 'Running the model…', value: null });
    // Out-of-range counts are clamped for the bar.
    expect(describeRunProgress({ request: 'a', stage: 'forward', done: 40, total: 30 }).value).toEqual({ now: 30, max: 30 });
  });

  it('a sampled corpus counts the tokens the model writes', () => {
    expect(parseRunProgress('{"request":"e","stage":"sampling","done":96,"total":256}')).toEqual({ request: 'e', stage: 'sampling', done: 96, total: 256 });
    expect(describeRunProgress({ request: 'e', stage: 'sampling', done: 96, total: 256 })).toEqual({ text: 'Sampling the corpus: 96 of 256 tokens', value: { now: 96, max: 256 } });
  });

  it('a generation counts the tokens written: the one being written, then the answer put together', () => {
    expect(parseRunProgress('{"request":"g","stage":"generating","done":4,"total":64}')).toEqual({ request: 'g', stage: 'generating', done: 4, total: 64 });
    expect(describeRunProgress({ request: 'g', stage: 'generating', done: 4, total: 64 })).toEqual({ text: 'Writing token 5 of 64', value: { now: 4, max: 64 } });
    expect(describeRunProgress({ request: 'g', stage: 'generating', done: 0, total: 64 }).text).toBe('Writing token 1 of 64');
    expect(describeRunProgress({ request: 'g', stage: 'generating', done: 64, total: 64 })).toEqual({ text: 'Wrote 64 tokens: finishing…', value: { now: 64, max: 64 } });
    expect(describeRunProgress({ request: 'g', stage: 'generating', done: 1, total: 1 }).text).toBe('Wrote 1 token: finishing…');
  });

  it('an evaluation counts documents, and says what it waits for in its own words', () => {
    expect(parseRunProgress('{"request":"e","stage":"documents","done":3,"total":40}')).toEqual({ request: 'e', stage: 'documents', done: 3, total: 40 });
    expect(describeRunProgress({ request: 'e', stage: 'documents', done: 3, total: 40 })).toEqual({ text: '3 of 40 documents', value: { now: 3, max: 40 } });
    expect(describeRunProgress({ request: 'e', stage: 'documents', done: 0, total: 1 }).text).toBe('0 of 1 document');
    expect(describeRunProgress(null, 'Starting the evaluation…')).toEqual({ text: 'Starting the evaluation…', value: null });
  });

  it('a fit counts its passes', () => {
    expect(parseRunProgress('{"request":"f","stage":"fitting","done":3,"total":12}')).toEqual({ request: 'f', stage: 'fitting', done: 3, total: 12 });
    expect(describeRunProgress({ request: 'f', stage: 'fitting', done: 3, total: 12 })).toEqual({ text: 'Fitting: pass 3 of 12', value: { now: 3, max: 12 } });
  });

  it('a patching sweep counts its patched runs', () => {
    expect(parseRunProgress('{"request":"p","stage":"patching","done":5,"total":60}')).toEqual({ request: 'p', stage: 'patching', done: 5, total: 60 });
    expect(describeRunProgress({ request: 'p', stage: 'patching', done: 5, total: 60 })).toEqual({ text: 'Patched run 5 of 60', value: { now: 5, max: 60 } });
  });
});
