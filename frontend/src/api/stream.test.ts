import { describe, expect, it } from 'vitest';
import type { GenerateResponse } from './types';
import { parseStreamLine, splitLines } from './stream';
import { STREAM_STEPS as STEPS } from '../test/fixtures';

describe('splitLines', () => {
  it('keeps a line split across chunks until it ends', () => {
    const a = splitLines('', '{"type":"st');
    expect(a).toEqual({ lines: [], rest: '{"type":"st' });
    const b = splitLines(a.rest, 'ep"}\n{"ty');
    expect(b).toEqual({ lines: ['{"type":"step"}'], rest: '{"ty' });
    expect(splitLines(b.rest, 'pe":"done"}\n')).toEqual({ lines: ['{"type":"done"}'], rest: '' });
  });
  it('several lines in one chunk; blank lines and \\r dropped', () => {
    expect(splitLines('', '{"a":1}\n\n{"b":2}\r\n{"c":')).toEqual({ lines: ['{"a":1}', '{"b":2}'], rest: '{"c":' });
  });
});

describe('parseStreamLine', () => {
  it('reads a step', () => {
    const l = parseStreamLine(JSON.stringify(STEPS[0]));
    expect(l).toEqual({ kind: 'step', step: STEPS[0] });
    // The last pass chooses nothing.
    expect(parseStreamLine(JSON.stringify(STEPS[2])).kind).toBe('step');
  });

  it('reads done with its run id (the line carries it: a stream has no header)', () => {
    const response = { text: 'x', input_tokens: ['<s>'], logit_lens: [], generated_ids: [], generated_text: '', prompt_tokens: 1, stopped_at_eos: false } as GenerateResponse;
    expect(parseStreamLine(JSON.stringify({ type: 'done', run_id: 12, response }))).toEqual({ kind: 'done', response, runId: 12 });
    expect(parseStreamLine(JSON.stringify({ type: 'done', response }))).toEqual({ kind: 'done', response, runId: null });
  });

  it('reads an error line, with words even when the server gave none', () => {
    expect(parseStreamLine('{"type":"error","detail":"the run was cancelled "}')).toEqual({ kind: 'error', detail: 'the run was cancelled' });
    expect(parseStreamLine('{"type":"error"}')).toEqual({ kind: 'error', detail: 'the server did not say why' });
  });

  it('a malformed line says what is wrong with it', () => {
    expect(parseStreamLine('{"type":"step",')).toEqual({ kind: 'malformed', error: 'The server sent a line that is not JSON: {"type":"step",' });
    expect(parseStreamLine('[1,2]')).toEqual({ kind: 'malformed', error: 'The server sent a line without a type: [1,2]' });
    expect(parseStreamLine('{"type":"step","index":0,"start":0,"tokens":["a"],"columns":[{"layer_name":"E","predictions":[]}]}')).toEqual({
      kind: 'malformed',
      error: 'The server sent a step line that cannot be read (a row has 0 positions for 1 tokens)',
    });
    expect(parseStreamLine('{"type":"step","index":-1,"start":0,"tokens":[],"columns":[]}').kind).toBe('malformed');
    expect(parseStreamLine('{"type":"done","response":{"logit_lens":[]}}').kind).toBe('malformed');
    expect(parseStreamLine(`x${'y'.repeat(200)}`)).toEqual({ kind: 'malformed', error: `The server sent a line that is not JSON: x${'y'.repeat(79)}…` });
  });

  it('a line of a type this page does not know is passed over', () => {
    expect(parseStreamLine('{"type":"heartbeat"}')).toEqual({ kind: 'other', type: 'heartbeat' });
  });
});
