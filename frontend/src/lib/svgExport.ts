// A chart drawn as an SVG element, as a file: its markup standalone (what only the page needs,
// hover marks and focus stops, left out), or a PNG the browser renders from it.

/** The standalone markup of `svg`: an XML declaration, the namespace, no hover marks (`data-hover`) or tab stops. */
export function svgMarkup(svg: SVGSVGElement): string {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  clone.querySelectorAll('[data-hover]').forEach((e) => e.remove());
  clone.querySelectorAll('[tabindex]').forEach((e) => e.removeAttribute('tabindex'));
  // The serializer declares the element's namespace itself; an xmlns attribute as well (React
  // writes one) would be declared twice, which XML parsers refuse.
  clone.removeAttribute('xmlns');
  let text = new XMLSerializer().serializeToString(clone);
  if (!/^<svg[^>]*\sxmlns="/.test(text)) text = text.replace(/^<svg/, '<svg xmlns="http://www.w3.org/2000/svg"');
  return `<?xml version="1.0" encoding="UTF-8"?>\n${text}\n`;
}

/** A PNG of the SVG `markup`, `width`×`height` CSS pixels drawn at `scale` (2: sharp on a slide). */
export async function svgToPng(markup: string, width: number, height: number, scale = 2): Promise<Blob> {
  const img = new Image();
  await new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error('the browser could not draw the chart as an image'));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(markup)}`;
  });
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser cannot draw on a canvas');
  ctx.scale(scale, scale);
  ctx.drawImage(img, 0, 0, width, height);
  return new Promise<Blob>((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the browser could not encode the PNG'))), 'image/png'));
}
