// Holding a streamed /generate back in the browser, so that a test sees the grid between two
// steps: the page's fetch is wrapped (`holdGenerateStream`, an init script) and the test lets lines
// through one by one (`allow`).
//
// Each stream has its own gate, made when its request is sent. A gate made when the answer
// arrived would wipe an allowance given in between: under load (the server still finishing a
// stopped generation) the answer comes well after the request, and a test that allowed lines on
// seeing the request then waited for ever. So a test waits for the request (`clickGenerate`)
// before it allows, and an allowance always belongs to that request's stream.

/**
 * Runs in the page before the app (page.addInitScript): every streamed /generate is held back.
 * The server's lines are read as they come but handed to the app only as allowed
 * (`__gen.allow(n)`, for the last stream asked); every line read is kept (`__gen.lines`). Aborting
 * the request (Stop) errors the held body as the browser's own would (`__gen.aborted`).
 */
export function holdGenerateStream() {
  const realFetch = window.fetch.bind(window);
  const abortError = () => new DOMException('The operation was aborted.', 'AbortError');
  const gate = {
    /** Every streamed /generate of the page, in the order asked. */
    streams: [],
    get current() {
      return this.streams[this.streams.length - 1] ?? null;
    },
    /** Lets `n` more lines of the last stream asked through. */
    allow(n) {
      const s = this.current;
      if (!s) throw new Error('no streamed /generate has been asked yet');
      s.allowed += n;
      s.wake?.();
    },
    get lines() {
      return this.current?.lines ?? [];
    },
    get aborted() {
      return this.current?.aborted ?? false;
    },
  };
  window.__gen = gate;
  window.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    let streamed = false;
    if (/(^|\/)generate$/.test(url) && typeof init?.body === 'string') {
      try {
        streamed = JSON.parse(init.body).stream === true;
      } catch {
        /* not a body the app sends */
      }
    }
    if (!streamed) return realFetch(input, init);
    // This stream's gate exists from its request on: whatever is allowed from then is its own.
    const s = { lines: [], given: 0, allowed: 0, aborted: false, answered: false, wake: null };
    gate.streams.push(s);
    init.signal?.addEventListener('abort', () => {
      s.aborted = true;
      s.wake?.();
    });
    const res = await realFetch(input, init);
    s.answered = true;
    if (!(res.headers.get('content-type') ?? '').includes('ndjson')) return res;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    const queue = [];
    let rest = '';
    let upstreamDone = false;
    const take = (line) => {
      if (line.trim()) {
        queue.push(line);
        s.lines.push(line);
      }
    };
    const fill = async () => {
      while (queue.length === 0 && !upstreamDone) {
        const { done, value } = await reader.read();
        if (done) {
          upstreamDone = true;
          take(rest + decoder.decode());
          return;
        }
        const parts = (rest + decoder.decode(value, { stream: true })).split('\n');
        rest = parts.pop();
        parts.forEach(take);
      }
    };
    const held = new ReadableStream({
      start(c) {
        if (s.aborted) c.error(abortError());
        else init.signal?.addEventListener('abort', () => c.error(abortError()));
      },
      async pull(c) {
        while (s.given >= s.allowed && !s.aborted) await new Promise((r) => (s.wake = r));
        if (s.aborted) return;
        await fill();
        if (s.aborted) return;
        if (queue.length === 0) return c.close();
        c.enqueue(encoder.encode(`${queue.shift()}\n`));
        s.given++;
      },
      cancel() {
        reader.cancel().catch(() => {});
      },
    });
    return new Response(held, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** Whether `req` is a streamed /generate (Attribute asks /generate too, without a stream). */
export function isStreamedGenerate(req) {
  if (!req.url().endsWith('/generate') || req.method() !== 'POST') return false;
  try {
    return JSON.parse(req.postData() ?? '').stream === true;
  } catch {
    return false;
  }
}

/**
 * Clicks Generate and waits until its stream is asked: from then on `allow` lets that stream's
 * lines through. Returns the request.
 */
export async function clickGenerate(page) {
  const asked = page.waitForRequest(isStreamedGenerate);
  await page.getByRole('button', { name: 'Generate' }).click();
  return asked;
}

/** Lets `n` more lines of the last stream asked through. */
export const allow = (page, n) => page.evaluate((k) => window.__gen.allow(k), n);

/** Every line of the last stream asked read so far, parsed. */
export const streamLines = async (page) => (await page.evaluate(() => window.__gen.lines)).map((l) => JSON.parse(l));
