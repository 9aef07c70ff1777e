import { describe, expect, it } from 'vitest';
import { act, renderHook, screen } from '@testing-library/react';
import { ApiError } from '../api/client';
import { NotificationProvider } from '../components/Notifications';
import { retryTime, useRunTask } from './useRunTask';

function renderTask() {
  const hook = renderHook(() => useRunTask({ subscribeRunProgress: () => () => {} }), { wrapper: NotificationProvider });
  return () => hook.result.current;
}

describe('useRunTask', () => {
  it('one request at a time: what it is, its failure in words and in a toast, forgotten by the next', async () => {
    const task = renderTask();
    expect(task().kind).toBe('run');
    let t!: ReturnType<ReturnType<typeof task>['begin']>;
    act(() => {
      t = task().begin('generate');
    });
    expect(task().kind).toBe('generate');
    expect(task().running).toBe(true);
    act(() => {
      t.fail('the server is busy', 'The server is busy', 1234);
      t.end();
    });
    expect(task().error).toBe('the server is busy');
    expect(task().retryAt).toBe(1234);
    expect(task().running).toBe(false);
    expect((await screen.findByTestId('toast-error')).textContent).toContain('The server is busy');
    act(() => {
      t = task().begin('run');
    });
    expect(task().error).toBeNull();
    expect(task().retryAt).toBeNull();
    expect(task().kind).toBe('run');
  });

  it('a replaced or stopped request can neither fail nor end the one after it', () => {
    const task = renderTask();
    let a!: ReturnType<ReturnType<typeof task>['begin']>;
    let b!: typeof a;
    act(() => {
      a = task().begin('generate');
    });
    act(() => task().stop());
    expect(task().stopped).toBe(true);
    act(() => {
      b = task().begin('run');
    });
    expect(a.isCurrent()).toBe(false);
    expect(a.signal.aborted).toBe(true);
    act(() => {
      a.fail('too late', 'Generation failed', null);
      a.end();
      a.report({ request: a.id, stage: 'generating', done: 1, total: 2 });
    });
    expect(task().error).toBeNull();
    expect(task().running).toBe(true);
    expect(task().stopped).toBe(false);
    expect(task().progress.get()).toBeNull();
    expect(b.isCurrent()).toBe(true);
  });

  it('retryTime: when a 503 said to try again, else null', () => {
    expect(retryTime(new ApiError('busy', 503, 7), 1000)).toBe(8000);
    expect(retryTime(new ApiError('busy', 503), 1000)).toBeNull();
    expect(retryTime(new ApiError('nope', 400, 7), 1000)).toBeNull();
    expect(retryTime(new Error('x'), 1000)).toBeNull();
  });
});
