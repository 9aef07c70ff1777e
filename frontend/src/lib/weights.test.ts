import { describe, expect, it } from 'vitest';
import { TINY_LLAMA } from '../test/fixtures';
import { formatMemory, isWeightsMode, memoryNeed, WEIGHTS_MODES, weightsDetail, weightsDiffer, weightsForm, weightsLine } from './weights';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

describe('formatMemory', () => {
  it('is MiB under 1 GiB, whole', () => {
    expect(formatMemory(540 * MIB)).toBe('540 MiB');
    expect(formatMemory(1 * MIB)).toBe('1 MiB');
    expect(formatMemory(1023 * MIB)).toBe('1023 MiB');
    expect(formatMemory(135_000_000 * 4)).toBe('515 MiB');
  });

  it('is GiB with one decimal from 1 GiB', () => {
    expect(formatMemory(GIB)).toBe('1.0 GiB');
    expect(formatMemory(15 * GIB)).toBe('15.0 GiB');
    expect(formatMemory(16_000_000_000)).toBe('14.9 GiB');
    expect(formatMemory(2.25 * GIB)).toBe('2.3 GiB');
  });

  it('writes a value that rounds up to the next unit in that unit', () => {
    expect(formatMemory(GIB - 1)).toBe('1.0 GiB');
    expect(formatMemory(1023.6 * MIB)).toBe('1.0 GiB');
    expect(formatMemory(MIB - 1)).toBe('1 MiB');
  });

  it('has KiB and bytes for what is under 1 MiB (test-sized models)', () => {
    expect(formatMemory(46_080)).toBe('45 KiB');
    expect(formatMemory(1024)).toBe('1 KiB');
    expect(formatMemory(512)).toBe('512 B');
    expect(formatMemory(0)).toBe('0 B');
  });

  it('is empty when unknown or not a size', () => {
    expect(formatMemory(null)).toBe('');
    expect(formatMemory(undefined)).toBe('');
    expect(formatMemory(Number.NaN)).toBe('');
    expect(formatMemory(-1)).toBe('');
  });
});

describe('weights in words', () => {
  it('names stored weights by their kinds, widened ones by their dtype', () => {
    expect(weightsForm({ form: 'stored', kinds: 'BF16', resident_bytes: 0 })).toBe('stored BF16');
    expect(weightsForm({ form: 'stored', kinds: 'Q4_1, Q8_0', resident_bytes: 0 })).toBe('stored Q4_1, Q8_0');
    expect(weightsForm({ form: 'stored', kinds: '', resident_bytes: 0 })).toBe('stored');
    expect(weightsForm({ form: 'f32', kinds: 'F32', resident_bytes: 0 })).toBe('f32');
    expect(weightsForm({ form: 'f64', kinds: 'F64', resident_bytes: 0 })).toBe('f64');
  });

  it('the header line: form and resident size', () => {
    expect(weightsLine({ form: 'stored', kinds: 'BF16', resident_bytes: 15 * GIB })).toBe('weights: stored BF16 · 15.0 GiB');
    expect(weightsLine({ form: 'f32', kinds: 'F32', resident_bytes: 540 * MIB })).toBe('weights: f32 · 540 MiB');
    expect(weightsLine(TINY_LLAMA.weights)).toBe('weights: f32 · 45 KiB');
    expect(weightsLine(null)).toBe('');
    expect(weightsLine(undefined)).toBe('');
  });

  it('the tooltip spells out the form, the checkpoint, the compute dtype and the exact size', () => {
    expect(weightsDetail(TINY_LLAMA)).toBe('Weights widened to f32 when loaded (the checkpoint stores F32); the forward pass computes in f32. 45 KiB in memory (46,080 bytes).');
    const stored = { ...TINY_LLAMA, weights: { form: 'stored', kinds: 'BF16', resident_bytes: 15 * GIB }, source: { ...TINY_LLAMA.source, stored_dtype: 'BF16' } };
    expect(weightsDetail(stored)).toBe(
      'Weights kept as stored (BF16), widened a slice at a time while multiplying; the forward pass computes in f32. 15.0 GiB in memory (16,106,127,360 bytes).',
    );
  });

  it('the weights choices: auto first, then the two explicit ones', () => {
    expect(WEIGHTS_MODES.map((m) => m.value)).toEqual(['auto', 'f32', 'stored']);
    expect(isWeightsMode('stored')).toBe(true);
    expect(isWeightsMode('bf16')).toBe(false);
  });

  it('a load reloads the model in service only when its weights are held otherwise than asked', () => {
    const wide = { form: 'f32', kinds: 'F32', resident_bytes: 1 };
    const wider = { form: 'f64', kinds: 'F64', resident_bytes: 1 };
    const stored = { form: 'stored', kinds: 'BF16', resident_bytes: 1 };
    expect(weightsDiffer(wide, 'auto')).toBe(false);
    expect(weightsDiffer(stored, 'auto')).toBe(false);
    expect(weightsDiffer(wide, 'f32')).toBe(false);
    expect(weightsDiffer(wider, 'f32')).toBe(false);
    expect(weightsDiffer(stored, 'f32')).toBe(true);
    expect(weightsDiffer(wide, 'stored')).toBe(true);
    expect(weightsDiffer(stored, 'stored')).toBe(false);
    expect(weightsDiffer(undefined, 'stored')).toBe(false);
  });
});

describe('memoryNeed', () => {
  it('fits or unknown: the need, not a warning', () => {
    expect(memoryNeed({ memory_bytes: 540 * MIB, fits: true })).toEqual({ text: '≈ 540 MiB in memory', title: 'About 540 MiB of memory once loaded with weights “auto”: fits in the memory free now', tooBig: false });
    expect(memoryNeed({ memory_bytes: 540 * MIB, fits: null })).toMatchObject({ text: '≈ 540 MiB in memory', tooBig: false });
    expect(memoryNeed({ memory_bytes: 540 * MIB })).toMatchObject({ tooBig: false });
  });

  it('too big: said in words', () => {
    const need = memoryNeed({ memory_bytes: 14_000_000_000, fits: false })!;
    expect(need.text).toBe('≈ 13.0 GiB · too big for this machine’s free memory');
    expect(need.tooBig).toBe(true);
    expect(memoryNeed({ memory_bytes: null, fits: false })).toMatchObject({ text: 'too big for this machine’s free memory', tooBig: true });
  });

  it('nothing when the server knows neither', () => {
    expect(memoryNeed({ memory_bytes: null, fits: null })).toBeNull();
    expect(memoryNeed({})).toBeNull();
  });
});
