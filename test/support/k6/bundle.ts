/**
 * Bundles a k6 script with the runtime's module implementations into one CommonJS file for the VU workers.
 * The script may import only the k6 modules implemented here and relative files: anything else (another
 * k6 module, a Node built-in, an npm package, a remote jslib) fails the bundle with a message naming it.
 */
import { build, type Plugin } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The k6 modules this runtime implements, and the file that implements each. */
export const K6_MODULES: Record<string, string> = {
  k6: 'modules/k6.ts',
  'k6/http': 'modules/http.ts',
  'k6/websockets': 'modules/websockets.ts',
  'k6/metrics': 'modules/metrics.ts',
  'k6/timers': 'modules/timers.ts',
  'k6/execution': 'modules/execution.ts',
};

/** The script cannot be bundled: a syntax error, a missing export, or an import the runtime does not provide. */
export class BundleError extends Error {}

function scriptImports(scriptPath: string): Plugin {
  const scriptDir = path.dirname(scriptPath);
  return {
    name: 'k6-test-runtime',
    setup(b) {
      b.onResolve({ filter: /^k6-test-runtime:script$/ }, () => ({ path: scriptPath }));
      b.onResolve({ filter: /.*/ }, (args) => {
        // Only the script's own graph is restricted; the runtime's files import what they like.
        if (!args.importer || !args.importer.startsWith(scriptDir) || args.importer.startsWith(HERE)) return undefined;
        if (args.path.startsWith('./') || args.path.startsWith('../')) return undefined;
        const impl = K6_MODULES[args.path];
        if (impl) return { path: path.join(HERE, impl) };
        const what = args.path === 'k6' || args.path.startsWith('k6/') ? `k6 module "${args.path}" is not implemented by the test-only runtime` : `"${args.path}" is not a k6 module (k6 scripts import k6/* modules and relative files)`;
        return { errors: [{ text: `${what}; imported from ${path.relative(process.cwd(), args.importer)}` }] };
      });
    },
  };
}

/** Bundle `scriptPath`; resolves to the bundle's path (a fresh temporary directory). */
export async function bundleScript(scriptPath: string): Promise<string> {
  const outfile = path.join(mkdtempSync(path.join(tmpdir(), 'k6-runtime-')), 'vu.cjs');
  try {
    await build({
      entryPoints: [path.join(HERE, 'vu.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile,
      logLevel: 'silent',
      // ws's optional native helpers; it falls back to JavaScript without them.
      external: ['bufferutil', 'utf-8-validate'],
      plugins: [scriptImports(path.resolve(scriptPath))],
    });
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string }> }).errors;
    throw new BundleError(errors?.length ? errors.map((e) => e.text).join('\n') : (err as Error).message);
  }
  return outfile;
}
