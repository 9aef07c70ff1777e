// The files a test's page offers for download (lib/download.ts: a Blob through a clicked link),
// captured instead of downloaded.
import { vi } from 'vitest';

export interface CapturedFile {
  name: string;
  type: string;
  text: Promise<string>;
}

/** Captures the files offered for download from now on: name, type and text (undo with vi.restoreAllMocks). */
export function captureDownloads(): CapturedFile[] {
  const files: CapturedFile[] = [];
  const blobs = new Map<string, Blob>();
  let n = 0;
  URL.createObjectURL = vi.fn((b: Blob) => {
    const url = `blob:file${n++}`;
    blobs.set(url, b);
    return url;
  });
  URL.revokeObjectURL = vi.fn();
  vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
    const b = blobs.get(this.href)!;
    files.push({ name: this.download, type: b.type, text: b.text() });
  });
  return files;
}
