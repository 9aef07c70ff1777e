// Weights and memory in words: how a loaded model holds its weights (the header's weights line),
// what a model needs in memory (the model browser), and the weights choice of a load.
import type { ModelDescription, ModelEntry, WeightsInfo, WeightsMode } from '../api/types';

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

/**
 * Bytes of memory in binary units: MiB under 1 GiB ("540 MiB"), else GiB with one decimal
 * ("15.0 GiB"); KiB and B for what is smaller than 1 MiB (a test-sized model). A value that
 * rounds up to the next unit is written in it (1023.8 MiB is "1.0 GiB"). '' when unknown.
 */
export function formatMemory(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n) || n < 0) return '';
  if (n >= GIB || Math.round(n / MIB) >= 1024) return `${(n / GIB).toFixed(1)} GiB`;
  if (n >= MIB || Math.round(n / KIB) >= 1024) return `${Math.round(n / MIB)} MiB`;
  if (n >= KIB || Math.round(n) >= 1024) return `${Math.round(n / KIB)} KiB`;
  return `${Math.round(n)} B`;
}

/** How the weights are held: "stored BF16", "stored Q4_1, Q8_0", or the widened dtype ("f32", "f64"). */
export function weightsForm(w: WeightsInfo): string {
  if (w.form === 'stored') return w.kinds ? `stored ${w.kinds}` : 'stored';
  return w.form;
}

/** The header's line: "weights: stored BF16 · 15.0 GiB", "weights: f32 · 540 MiB"; '' without weights info. */
export function weightsLine(w: WeightsInfo | null | undefined): string {
  if (!w) return '';
  const size = formatMemory(w.resident_bytes);
  return `weights: ${weightsForm(w)}${size ? ` · ${size}` : ''}`;
}

/** The weights line's tooltip: the form spelled out, the checkpoint's dtype, the compute dtype, the exact size. */
export function weightsDetail(m: Pick<ModelDescription, 'weights' | 'compute_dtype' | 'source'>): string {
  const w = m.weights;
  if (!w) return '';
  const onDisk = m.source?.stored_dtype ? ` (the checkpoint stores ${m.source.stored_dtype})` : '';
  const held =
    w.form === 'stored'
      ? `Weights kept as stored${w.kinds ? ` (${w.kinds})` : ''}, widened a slice at a time while multiplying`
      : `Weights widened to ${w.form} when loaded${onDisk}`;
  const size = formatMemory(w.resident_bytes);
  return `${held}; the forward pass computes in ${m.compute_dtype}. ${size ? `${size} in memory (${w.resident_bytes.toLocaleString('en-US')} bytes).` : ''}`.trim();
}

/** The weights choices of a load, `auto` (the server's default) first. */
export const WEIGHTS_MODES: { value: WeightsMode; label: string; title: string }[] = [
  { value: 'auto', label: 'auto', title: 'Widened to f32 when that takes under 40% of the memory available, else kept as stored' },
  { value: 'f32', label: 'f32 (widened)', title: 'Every weight widened to f32 (f64 for test-sized models): twice the memory of bf16' },
  {
    value: 'stored',
    label: 'stored (bf16 / f16 / quantized)',
    title: 'The big matrices kept as the checkpoint stores them (bf16, f16, GGUF blocks), computed in f32: an 8B bf16 model takes its 16 GB, not 32',
  },
];

export function isWeightsMode(v: string): v is WeightsMode {
  return WEIGHTS_MODES.some((m) => m.value === v);
}

/**
 * Whether a model whose weights are held as `w` is not what `mode` asks for, so a load of it with
 * `mode` loads it again (the server's rule: `auto` takes the model as it is, `stored` wants stored
 * weights, `f32` widened ones).
 */
export function weightsDiffer(w: WeightsInfo | null | undefined, mode: WeightsMode): boolean {
  if (!w || mode === 'auto') return false;
  return mode === 'stored' ? w.form !== 'stored' : w.form === 'stored';
}

/** A model browser entry's memory need and whether it fits, in words; null when the server does not know. */
export function memoryNeed(m: Pick<ModelEntry, 'memory_bytes' | 'fits'>): { text: string; title: string; tooBig: boolean } | null {
  const size = formatMemory(m.memory_bytes);
  if (!size) {
    return m.fits === false ? { text: 'too big for this machine’s free memory', title: 'The server says it does not fit in the memory available now', tooBig: true } : null;
  }
  const need = `About ${size} of memory once loaded with weights “auto”`;
  if (m.fits === false) {
    return {
      text: `≈ ${size} · too big for this machine’s free memory`,
      title: `${need}: more than this machine has free now, so a load is likely to be refused. It stays listed: free memory and try again.`,
      tooBig: true,
    };
  }
  return { text: `≈ ${size} in memory`, title: m.fits === true ? `${need}: fits in the memory free now` : need, tooBig: false };
}
