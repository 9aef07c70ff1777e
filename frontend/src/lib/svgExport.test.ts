import { describe, expect, it } from 'vitest';
import { svgMarkup } from './svgExport';

describe('svgMarkup', () => {
  it('writes a standalone SVG without the page’s hover marks and tab stops', () => {
    const host = document.createElement('div');
    // As React writes it: an xmlns attribute besides the element's namespace.
    host.innerHTML =
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" viewBox="0 0 10 10"><g tabindex="0"><rect x="0" y="0" width="10" height="10" fill="#1e293b"></rect><line data-hover="" x1="1" x2="1" y1="0" y2="10"></line></g></svg>';
    const svg = host.querySelector('svg')!;
    const text = svgMarkup(svg);
    expect(text.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg')).toBe(true);
    expect(text.match(/xmlns=/g)).toHaveLength(1);
    expect(text).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(text).toContain('fill="#1e293b"');
    expect(text).not.toContain('data-hover');
    expect(text).not.toContain('tabindex');
    // The page's own element is left as it was.
    expect(svg.querySelector('[data-hover]')).not.toBeNull();
    expect(new DOMParser().parseFromString(text, 'image/svg+xml').querySelector('parsererror')).toBeNull();
  });
});
