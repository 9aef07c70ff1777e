// A button that opens the file picker (a corpus, an evaluation file), its input hidden but labelled.

/** A button that opens the file picker of a hidden file input. */
export function FileButton({ label, accept, onFile, ariaLabel }: { label: string; accept: string; onFile: (f: File) => void; ariaLabel: string }) {
  return (
    <label className="btn btn-small btn-secondary file-btn">
      {label}
      <input
        type="file"
        accept={accept}
        aria-label={ariaLabel}
        className="sr-only"
        onChange={(e) => {
          const f = e.target.files?.[0];
          // Cleared so that choosing the same file again reads it again.
          e.target.value = '';
          if (f) onFile(f);
        }}
      />
    </label>
  );
}
