// Files the app offers for download (CSV tables, charts): a Blob through a temporary link, and
// the parts of their names; and the text of a file the user chose (a corpus, an evaluation).

/** Offers `blob` as a file download through a temporary link. */
export function downloadBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The click has started the download; the URL goes a little later, as some browsers read it late.
  window.setTimeout(() => URL.revokeObjectURL(url), 5000);
}

/** Offers `text` as a file download. */
export function downloadText(text: string, fileName: string, type = 'text/csv;charset=utf-8'): void {
  downloadBlob(new Blob([text], { type }), fileName);
}

/** `YYYYMMDD_HHMMSS` in local time, as the server stamps its saved files. */
export function fileStamp(when: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${when.getFullYear()}${p(when.getMonth() + 1)}${p(when.getDate())}_${p(when.getHours())}${p(when.getMinutes())}${p(when.getSeconds())}`;
}

/** `name` safe in a file name (letters, digits, `._-`), or `fallback` when nothing is left. */
export function fileNamePart(name: string, fallback = 'model'): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || fallback;
}

/** A file's text (Blob.text where there is one; FileReader otherwise). */
export function readFileText(f: File): Promise<string> {
  if (typeof f.text === 'function') return f.text();
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result ?? ''));
    r.onerror = () => reject(r.error ?? new Error('the file could not be read'));
    r.readAsText(f);
  });
}
