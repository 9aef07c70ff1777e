// The shape of the app's imports: components → hooks → lib → api, never back, and no cycle. Read
// from the sources themselves (every `import … from` and `export … from` of the .ts/.tsx files
// outside tests), so a hook that reaches for a component's type, or two modules that need each
// other, fail here rather than in a review.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.dirname(fileURLToPath(import.meta.url));

/** Where a file sits: the lower layers never import the higher ones. */
const LAYERS = ['api', 'lib', 'hooks', 'components'] as const;
type Layer = (typeof LAYERS)[number] | 'app';

function layerOf(file: string): Layer {
  const top = file.split('/')[0];
  return (LAYERS as readonly string[]).includes(top) ? (top as Layer) : 'app';
}

const rank = (l: Layer) => (l === 'app' ? LAYERS.length : LAYERS.indexOf(l));

function isSource(rel: string): boolean {
  return /\.tsx?$/.test(rel) && !/\.test\.tsx?$/.test(rel) && !rel.startsWith('test/') && rel !== 'test-setup.ts';
}

function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    const rel = path.relative(SRC, full).split(path.sep).join('/');
    return isSource(rel) ? [rel] : [];
  });
}

/** The module specifiers of a file's `import … from '…'`, `import '…'` and `export … from '…'` (type-only ones too). */
export function specifiers(code: string): string[] {
  const out: string[] = [];
  const re = /^\s*(?:import|export)\b(?:[^'";()=]*?\bfrom\s*)?\s*['"]([^'"]+)['"]/gm;
  for (let m = re.exec(code); m; m = re.exec(code)) out.push(m[1]);
  return out;
}

/** A relative specifier of `from` as a source file (src-relative), or null (a package, a stylesheet). */
function resolve(from: string, spec: string, files: Set<string>): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const cand of [base, `${base}.ts`, `${base}.tsx`, `${base}/index.ts`, `${base}/index.tsx`]) if (files.has(cand)) return cand;
  return null;
}

type Graph = Map<string, string[]>;

function importGraph(): Graph {
  const files = sources();
  const set = new Set(files);
  return new Map(
    files.map((f) => {
      const code = fs.readFileSync(path.join(SRC, f), 'utf8');
      const deps = specifiers(code)
        .map((s) => resolve(f, s, set))
        .filter((d): d is string => d !== null);
      return [f, [...new Set(deps)]];
    }),
  );
}

/** Every cycle's files (strongly connected components of more than one file, or a file importing itself). */
export function cycles(g: Graph): string[][] {
  // Tarjan's algorithm.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** Imports that go up the layers: `a → b` where b's layer is above a's. */
function upward(g: Graph): string[] {
  const out: string[] = [];
  for (const [a, deps] of g) for (const b of deps) if (rank(layerOf(b)) > rank(layerOf(a))) out.push(`${a} → ${b}`);
  return out.sort();
}

describe('the import graph of src/', () => {
  const graph = importGraph();

  it('reads the sources: every file, and imports whatever their form', () => {
    expect(graph.get('App.tsx')).toEqual(expect.arrayContaining(['hooks/useRun.ts', 'components/Controls.tsx']));
    expect(graph.has('api/client.ts')).toBe(true);
    expect([...graph.keys()].some((f) => f.includes('.test.'))).toBe(false);
    expect(
      specifiers(`import a from './a';
import type { B } from "../b";
import {
  c,
  type D,
} from './c';
export { e } from './e';
export * from './f';
import './styles.css';
const x = 'import y from "./not-an-import"';`),
    ).toEqual(['./a', '../b', './c', './e', './f', './styles.css']);
  });

  it('finds a cycle when there is one', () => {
    const g: Graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c'], ['e']]);
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('no hook or lib module imports a component', () => {
    const bad = [...graph].flatMap(([a, deps]) => (layerOf(a) === 'hooks' || layerOf(a) === 'lib' ? deps.filter((b) => layerOf(b) === 'components').map((b) => `${a} → ${b}`) : []));
    expect(bad).toEqual([]);
  });

  it('no component asks the server itself: requests go through hooks', () => {
    const fetching = [...graph.keys()].filter((f) => {
      if (layerOf(f) !== 'components') return false;
      const code = fs.readFileSync(path.join(SRC, f), 'utf8');
      return /^\s*import\s*\{[^}]*\bapi\b[^}]*\}\s*from\s*['"][./]*api\/client['"]/m.test(code) || /\bfetch\(/.test(code);
    });
    expect(fetching).toEqual([]);
  });

  it('goes components → hooks → lib → api only: nothing imports from a layer above its own', () => {
    expect(upward(graph)).toEqual([]);
  });
});
