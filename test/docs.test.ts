/** The README documents every coded error and every variable, with the defaults the code uses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS } from '../src/errors.js';
import { DEFAULTS } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Rows of the README table whose first cell is a backticked name. */
function tableRows(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of readme.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    for (const name of cells[0]!.matchAll(/`([A-Z0-9_]+)`/g)) rows.set(name[1]!, cells);
  }
  return rows;
}

test('every coded error is in the README errors table with its status and code', () => {
  const rows = tableRows();
  for (const [name, spec] of Object.entries(ERRORS)) {
    const row = rows.get(name);
    assert.ok(row, `${name} is not documented in README.md`);
    assert.equal(row[1], spec.status === 0 ? '–' : String(spec.status), `${name} status`);
    assert.equal(row[2], `\`${spec.code}\``, `${name} code`);
  }
});

test('every variable is in the README configuration table with its default', () => {
  const rows = tableRows();
  const source = readFileSync(new URL('../src/config.ts', import.meta.url), 'utf8');
  const names = [...source.matchAll(/read\('([A-Z0-9_]+)'/g)].map((m) => m[1]!);
  assert.ok(names.length >= 30, 'config.ts read() calls found');
  for (const name of names) {
    const row = rows.get(name);
    assert.ok(row, `${name} is not documented in README.md`);
    const def = (DEFAULTS as Record<string, string>)[name];
    if (def === undefined) continue;
    // Rows like `SOCKET_MIN_REPLICAS` / `SOCKET_MAX_REPLICAS` hold "2 / 50": the default must appear as a value there.
    const cell = row[1]!.replace(/`/g, '');
    assert.ok(cell.split(/\s*\/\s*|\s+\(/).some((v) => v.trim() === def), `${name}: README default "${row[1]}" does not show ${def}`);
  }
});

test('the README names exactly two set-up commands and the test command is what CI runs', () => {
  const block = /## Set-up[^\n]*\n+```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'set-up block');
  const commands = block[1]!.trim().split('\n');
  assert.equal(commands.length, 2);
  assert.match(commands[0]!, /^npm ci && npm start\b/);
  assert.match(commands[1]!, /^npm test\b/);
  assert.match(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8'), /^npm test$/m);
});
