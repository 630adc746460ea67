/**
 * The image without a Docker engine: the Dockerfile's build stage is replayed on a copy of exactly the
 * build context it would see (tracked files filtered by .dockerignore, copied per COPY instruction), its
 * `prepare` build runs there, and the entrypoint it produces is run as PID 1 in a new PID namespace to
 * show that SIGTERM reaches the role's graceful close.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { parseDocument } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '..');
const CHART_ROLES = ['gateway', 'socket', 'scaler'];

interface Instruction { op: string; args: string; line: number }

/** Dockerfile → instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      line = `${line.slice(0, -1)} ${next.trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile line ${start + 1}: cannot parse "${line}"`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

interface Copy { from?: string; sources: string[]; dest: string; line: number }

function parseCopy(ins: Instruction): Copy {
  const words = ins.args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  assert.ok(!ins.args.includes('['), `line ${ins.line}: use the plain COPY form`);
  const dest = words.pop()!;
  return { ...(from ? { from } : {}), sources: words, dest, line: ins.line };
}

/**
 * .dockerignore matching as Docker does it (moby/patternmatcher): patterns are cleaned, `*` and `?` stay
 * inside one path segment, `**` spans segments, a pattern also matches everything under a matched
 * directory, `!` re-includes, and the last matching pattern wins.
 */
function dockerignore(text: string): (file: string) => boolean {
  const rules = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((raw) => {
    const negate = raw.startsWith('!');
    const pattern = path.posix.normalize(negate ? raw.slice(1).trim() : raw).replace(/^\/+|\/+$/g, '');
    let re = '';
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i]!;
      if (c === '*' && pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
      } else if (c === '*') re += '[^/]*';
      else if (c === '?') re += '[^/]';
      else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return { negate, re: new RegExp(`^${re}$`) };
  });
  return (file) => {
    const parents = file.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (parents.some((p) => r.re.test(p))) excluded = !r.negate;
    return !excluded;
  };
}

const dockerfile = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const included = dockerignore(fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8'));
const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean)
  .filter((f) => fs.existsSync(path.join(ROOT, f)));
const args = Object.fromEntries(dockerfile.filter((i) => i.op === 'ARG').map((i) => i.args.split('=') as [string, string]));
const expand = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args[(a ?? b)!] ?? '');

/** Stages in order: name, base image, instructions. */
const stages: { name: string | undefined; base: string; body: Instruction[] }[] = [];
for (const ins of dockerfile) {
  if (ins.op === 'FROM') {
    const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
    stages.push({ name: m[2], base: expand(m[1]!), body: [] });
  } else if (stages.length > 0) stages.at(-1)!.body.push(ins);
}
const buildStage = stages[0]!;
/** The last instruction `op` of a stage (the one Docker uses). */
const lastOf = (stage: (typeof stages)[number], op: string) => [...stage.body].reverse().find((i) => i.op === op);
const finalStage = stages.at(-1)!;
const execForm = (ins: Instruction | undefined): string[] => {
  assert.ok(ins, 'instruction missing');
  const v = JSON.parse(ins.args) as unknown;
  assert.ok(Array.isArray(v) && v.every((s) => typeof s === 'string'), `line ${ins.line}: ${ins.op} must use the exec (JSON array) form`);
  return v as string[];
};

describe('Dockerfile', () => {
  test('multi-stage on node:20-bookworm-slim (glibc for uWebSockets.js), final stage runs as the non-root node user (uid 1000) like the chart', () => {
    assert.ok(stages.length >= 2, 'expected a build stage and a runtime stage');
    // Pinned by digest (the NODE_IMAGE build arg the README explains how to update).
    for (const s of stages) assert.match(s.base, /^node:20-bookworm-slim@sha256:[0-9a-f]{64}$/);
    assert.equal(buildStage.name, 'build');
    const users = finalStage.body.filter((i) => i.op === 'USER').map((i) => i.args);
    assert.equal(users.length, 1);
    const m = /^([1-9]\d*):([1-9]\d*)$/.exec(users[0]!);
    assert.ok(m, `USER ${users[0]}: numeric non-root uid:gid, so that runAsNonRoot can verify it`);
    // The chart runs the same ids.
    const values = parseDocument(fs.readFileSync(path.join(ROOT, 'helm/rtc-edge/values.yaml'), 'utf8')).toJS() as { podSecurityContext: { runAsUser: number; runAsGroup: number; runAsNonRoot: boolean } };
    assert.deepEqual([values.podSecurityContext.runAsUser, values.podSecurityContext.runAsGroup], [Number(m[1]), Number(m[2])]);
    assert.equal(values.podSecurityContext.runAsNonRoot, true);
    // The runtime stage only copies from the build stage: no sources, no devDependencies, no compiler.
    for (const c of finalStage.body.filter((i) => i.op === 'COPY').map(parseCopy)) assert.equal(c.from, 'build', `line ${c.line}`);
    assert.ok(!finalStage.body.some((i) => i.op === 'RUN'), 'the runtime stage installs nothing');
    const runs = buildStage.body.filter((i) => i.op === 'RUN').map((i) => i.args).join(' && ');
    assert.match(runs, /npm ci\b/);
    assert.match(runs, /npm prune --omit=dev/);
  });

  test('the image\'s Node major has a native uWebSockets.js binary for linux x64 and arm64 (no silent JS fallback)', () => {
    const major = /^node:(\d+)-/.exec(finalStage.base)?.[1];
    assert.ok(major, finalStage.base);
    // This test runs on the same Node major, so its ABI (process.versions.modules) is the image's.
    assert.equal(process.versions.node.split('.')[0], major, 'run the tests on the Node major of the image');
    const binaries = fs.readdirSync(path.join(ROOT, 'node_modules/uWebSockets.js/binaries'));
    for (const arch of ['x64', 'arm64']) assert.ok(binaries.includes(`uws_linux_${arch}_${process.versions.modules}.node`), `no uws_linux_${arch}_${process.versions.modules}.node`);
  });

  test('.dockerignore matcher follows Docker semantics (allow-list, ** and re-include)', () => {
    const m = dockerignore('*\n!src/\n**/*.test.ts\n');
    assert.equal(m('src/cli.ts'), true);
    assert.equal(m('src/registry/redis.ts'), true);
    assert.equal(m('src/config.test.ts'), false);
    assert.equal(m('node_modules/x/index.js'), false);
    assert.equal(m('README.md'), false);
    // The real file keeps secrets and bulk out of the context.
    for (const f of ['.git/config', 'node_modules/pino/package.json', 'dist/app/cli.js', '.env', 'test/support/redis.ts', 'helm/rtc-edge/values.yaml', 'src/config.test.ts', 'examples/client.ts']) {
      assert.equal(included(f), false, `${f} must not be in the build context`);
    }
  });

  test('every file the Dockerfile copies from the context exists in the repository and passes .dockerignore', () => {
    const copies = buildStage.body.filter((i) => i.op === 'COPY').map(parseCopy).filter((c) => !c.from);
    assert.ok(copies.length > 0);
    for (const c of copies) {
      for (const src of c.sources) {
        const files = tracked.filter((f) => f === src || f.startsWith(`${src.replace(/\/$/, '')}/`));
        assert.ok(files.length > 0, `COPY ${src} (line ${c.line}): not a tracked file or directory`);
        assert.ok(files.some(included), `COPY ${src} (line ${c.line}): everything is excluded by .dockerignore`);
      }
    }
    // The build compiles exactly what tsconfig.json includes: every included directory is copied.
    const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[]; compilerOptions: { outDir: string } };
    const copied = new Set(copies.flatMap((c) => c.sources.map((s) => s.replace(/\/$/, ''))));
    for (const inc of tsconfig.include) {
      const dir = inc.split('/')[0]!;
      if (dir === 'examples') assert.equal(copied.has(dir), false, 'examples/ stays out of the image');
      else assert.ok(copied.has(dir), `tsconfig includes ${inc} but the Dockerfile does not copy it`);
    }
    assert.ok(copied.has('package.json') && copied.has('package-lock.json') && copied.has('tsconfig.json'));
  });

  describe('replayed build stage', () => {
    let work: string;
    let builtRoles: string[] = [];

    before(() => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'rtc-edge-image-'));
      const app = path.join(work, 'app');
      fs.mkdirSync(app);
      // The context: tracked files that .dockerignore lets through.
      const context = tracked.filter(included);
      for (const c of buildStage.body.filter((i) => i.op === 'COPY').map(parseCopy)) {
        assert.equal(c.from, undefined);
        for (const src of c.sources) {
          const s = src.replace(/\/$/, '');
          for (const f of context.filter((f) => f === s || f.startsWith(`${s}/`))) {
            const rel = c.dest.endsWith('/') && f === s ? path.basename(f) : c.dest === './' ? f : path.join(c.dest, f.slice(s.length));
            const to = path.join(app, rel);
            fs.mkdirSync(path.dirname(to), { recursive: true });
            fs.copyFileSync(path.join(ROOT, f), to);
          }
        }
      }
      // `npm ci` would install the locked tree; the already-installed one stands in for it.
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'), 'dir');
    });
    after(() => fs.rmSync(work, { recursive: true, force: true }));

    test('the `prepare` build succeeds on the context alone and produces what the runtime stage copies', () => {
      const app = path.join(work, 'app');
      const pkg = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')) as { scripts: { prepare: string }; bin: Record<string, string> };
      const r = spawnSync('sh', ['-c', pkg.scripts.prepare], {
        cwd: app, encoding: 'utf8', env: { ...process.env, PATH: `${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
      });
      assert.equal(r.status, 0, `prepare (${pkg.scripts.prepare}) failed on the build context:\n${r.stdout}${r.stderr}`);
      for (const c of finalStage.body.filter((i) => i.op === 'COPY').map(parseCopy)) {
        for (const src of c.sources) assert.ok(fs.existsSync(path.join(work, src)), `COPY --from=build ${src}: not produced by the build stage`);
      }
      assert.ok(fs.existsSync(path.join(app, pkg.bin['rtc-edge']!)), 'the bin entry was not built');
      assert.equal(fs.existsSync(path.join(app, 'examples')) || fs.existsSync(path.join(app, 'dist/examples')), false, 'examples/ is not in the build context, so not in the runtime dist/');
    });

    test('ENTRYPOINT runs the package bin and CMD / the chart roles are roles the CLI knows', () => {
      const app = path.join(work, 'app');
      const pkg = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')) as { bin: Record<string, string> };
      const entry = execForm(lastOf(finalStage, 'ENTRYPOINT'));
      const cmd = execForm(lastOf(finalStage, 'CMD'));
      const workdir = lastOf(finalStage, 'WORKDIR')!.args;
      assert.equal(workdir, '/app');
      assert.deepEqual(entry, ['node', pkg.bin['rtc-edge']]);
      const help = spawnSync(entry[0]!, [...entry.slice(1), '--help'], { cwd: app, encoding: 'utf8' });
      assert.equal(help.status, 0, help.stderr);
      const rolesBlock = /Roles:\n((?: {2}\S.*\n|\s{3,}.*\n)+)/.exec(help.stdout);
      assert.ok(rolesBlock, `no Roles section in:\n${help.stdout}`);
      builtRoles = [...rolesBlock[1]!.matchAll(/^ {2}(\w+)\s/gm)].map((m) => m[1]!);
      for (const role of [...cmd, ...CHART_ROLES]) assert.ok(builtRoles.includes(role), `role ${role} not in ${builtRoles.join(', ')}`);
      const bad = spawnSync(entry[0]!, [...entry.slice(1), 'no-such-role'], { cwd: app, encoding: 'utf8' });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /unknown role "no-such-role"/);
    });

    test('as PID 1 (new PID namespace) the entrypoint turns SIGTERM into a graceful stop; a handler-less PID 1 would ignore it', async () => {
      const app = path.join(work, 'app');
      const entry = execForm(lastOf(finalStage, 'ENTRYPOINT'));
      const env = { ...process.env, SOCKET_PORT: '0', ADMIN_PORT: '0', POD_NAME: 'pid1-check', POD_IP: '127.0.0.1', REDIS_URL: '', LOG_LEVEL: 'info', DRAIN_TIMEOUT_MS: '2000', DRAIN_WINDOW_MS: '0' };

      /** Start argv as PID 1 of a new PID namespace; returns the process, its host pid and its output. */
      async function asPid1(argv: string[], ready: RegExp) {
        const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', ...argv], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
        child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
        const deadline = Date.now() + 20_000;
        while (!ready.test(out)) {
          assert.ok(child.exitCode === null, `exited early (${child.exitCode}):\n${out}`);
          assert.ok(Date.now() < deadline, `not ready:\n${out}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const kids = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
        assert.equal(kids.length, 1);
        return { child, hostPid: kids[0]!, output: () => out };
      }

      const edge = await asPid1([...entry, 'socket'], /"socket node listening"/);
      try {
        const started = edge.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { pid: number; msg: string });
        assert.equal(started.find((l) => l.msg === 'socket node listening')?.pid, 1, 'node is PID 1 inside the namespace');
        process.kill(edge.hostPid, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const [code] = (await Promise.race([
          once(edge.child, 'exit'),
          new Promise((r) => { timer = setTimeout(() => r(['no exit within 20 s']), 20_000); }),
        ]).finally(() => clearTimeout(timer))) as [number | string];
        assert.equal(code, 0, edge.output());
        assert.match(edge.output(), /"signal":"SIGTERM".*"shutting down"|"shutting down".*"signal":"SIGTERM"/);
        assert.match(edge.output(), /"socket node stopped"/);
      } finally {
        if (edge.child.exitCode === null) edge.child.kill('SIGKILL');
      }

      // Control: PID 1 without a handler does not die of SIGTERM (the kernel applies no default action).
      const bare = await asPid1(['node', '-e', 'console.log("up"); setInterval(() => {}, 1000)'], /up/);
      try {
        process.kill(bare.hostPid, 'SIGTERM');
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal(bare.child.exitCode, null, 'a handler-less PID 1 ignores SIGTERM');
      } finally {
        process.kill(bare.hostPid, 'SIGKILL');
        if (bare.child.exitCode === null) await once(bare.child, 'exit');
      }
    });
  });
});
