import { afterEach, describe, expect, it, vi } from 'vitest';
import { downloadBlob, downloadText, fileNamePart, fileStamp } from './download';

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('downloads', () => {
  it('stamps and cleans file names', () => {
    expect(fileStamp(new Date(2026, 10, 30, 9, 5, 7))).toBe('20261130_090507');
    expect(fileNamePart('SmolLM2-135M/Instruct')).toBe('SmolLM2-135M_Instruct');
    expect(fileNamePart(' llama (tuned) ')).toBe('llama_tuned');
    expect(fileNamePart('///')).toBe('model');
    expect(fileNamePart('', 'evaluation')).toBe('evaluation');
  });

  it('offers a Blob through a temporary link, and lets its URL go a little later', () => {
    vi.useFakeTimers();
    URL.createObjectURL = vi.fn(() => 'blob:x');
    URL.revokeObjectURL = vi.fn();
    const clicked: string[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(`${this.href} ${this.download}`);
    });
    downloadBlob(new Blob(['x'], { type: 'image/png' }), 'chart.png');
    downloadText('a,b\n', 'table.csv');
    expect(clicked).toEqual(['blob:x chart.png', 'blob:x table.csv']);
    expect((URL.createObjectURL as ReturnType<typeof vi.fn>).mock.calls[1][0].type).toBe('text/csv;charset=utf-8');
    expect(document.querySelector('a[download]')).toBeNull();
    expect(URL.revokeObjectURL).not.toHaveBeenCalled();
    vi.advanceTimersByTime(5000);
    expect(URL.revokeObjectURL).toHaveBeenCalledTimes(2);
  });
});
