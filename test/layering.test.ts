// The layering rule, read from the real import graph: the shared core (src/) imports no role, nothing but the
// tests imports the composition (app/), and no files import each other in a cycle.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', 'dist', '.git']);
const ROLES = ['gateway', 'socket', 'scaler', 'app'];

/** Every .ts file of the repository, relative to its root. */
function sourceFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(path.relative(ROOT, p));
  }
  return out;
}

/** file → the first-party files it imports (static, type-only, re-export and dynamic `import()`), by TypeScript's own pre-parser. */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const { importedFiles } = ts.preProcessFile(fs.readFileSync(path.join(ROOT, f), 'utf8'), true, true);
    const targets = importedFiles
      .map((i) => i.fileName)
      .filter((s) => s.startsWith('.'))
      .map((s) => path.relative(ROOT, path.resolve(ROOT, path.dirname(f), s)).replace(/\.js$/, '.ts'));
    graph.set(f, targets);
  }
  return graph;
}

/** The strongly connected components with more than one file, or one file importing itself (Tarjan). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const files = sourceFiles();
const graph = importGraph(files);

test('the graph is read from real files: every relative import resolves, and the CLI reaches each role', () => {
  assert.ok(files.length > 50, `only ${files.length} .ts files found`);
  const unresolved = [...graph].flatMap(([f, targets]) => targets.filter((t) => !graph.has(t)).map((t) => `${f} → ${t}`));
  assert.deepEqual(unresolved, []);
  for (const role of ['gateway', 'socket', 'scaler']) assert.ok(graph.get('app/cli.ts')?.includes(`${role}/index.ts`), `app/cli.ts does not import ${role}/index.ts`);
});

test('no file under src/ imports a role (gateway/, socket/, scaler/) or the composition (app/)', () => {
  const up = [...graph]
    .filter(([f]) => f.startsWith('src/'))
    .flatMap(([f, targets]) => targets.filter((t) => ROLES.some((r) => t.startsWith(`${r}/`))).map((t) => `${f} → ${t}`));
  assert.deepEqual(up, []);
});

test('nothing but the tests and the benchmark harness imports the composition (app/)', () => {
  // Benchmarks compose the stack like tests do; the k6 scripts under loadtest/k6/ run in k6 and import nothing of ours.
  const harness = (f: string) => f.startsWith('test/') || (f.startsWith('loadtest/') && !f.startsWith('loadtest/k6/'));
  const into = [...graph]
    .filter(([f]) => !f.startsWith('app/') && !harness(f))
    .flatMap(([f, targets]) => targets.filter((t) => t.startsWith('app/')).map((t) => `${f} → ${t}`));
  assert.deepEqual(into, []);
});

test('no import cycle: no two files import each other, directly or through others', () => {
  assert.deepEqual(cycles(graph), []);
});

test('the cycle finder sees a two-file cycle, a longer one and a self-import, and not a diamond', () => {
  const g = new Map<string, string[]>([
    ['a', ['b']], ['b', ['a']],
    ['c', ['d']], ['d', ['e']], ['e', ['c']],
    ['f', ['f']],
    ['g', ['h', 'i']], ['h', ['j']], ['i', ['j']], ['j', []],
  ]);
  assert.deepEqual(cycles(g), [['a', 'b'], ['c', 'd', 'e'], ['f']]);
});
