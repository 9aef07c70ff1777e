// Export PNG of a chart drawn as an SVG element: the browser renders it, and a failure (a browser
// that cannot draw it) is said in a toast.
import { useCallback } from 'react';
import { useNotify } from './useNotify';
import { downloadBlob } from '../lib/download';
import { svgMarkup, svgToPng } from '../lib/svgExport';

/** Offers `svg` as the PNG file `fileName`, drawn at its size on the page. */
export function usePngExport(): (svg: SVGSVGElement | null, fileName: string) => void {
  const { notify } = useNotify();
  return useCallback(
    (svg, fileName) => {
      if (!svg) return;
      svgToPng(svgMarkup(svg), svg.width.baseVal.value, svg.height.baseVal.value)
        .then((png) => downloadBlob(png, fileName))
        .catch((err: unknown) => notify('error', err instanceof Error ? err.message : String(err), 'Could not export the chart as PNG'));
    },
    [notify],
  );
}
