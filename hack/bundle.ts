// Bundles the image's entry point, operator/main.ts (the manager and every runner subcommand), with esbuild
// into dist/bundle/: ESM, Node 20, code splitting. Each command loads only its chunks: a backup Job pod reads
// 13 files instead of resolving and loading the 150 modules of dist/operator/ and node_modules the tsc build
// loads, most of its start-up (docs/architecture.md, "The image runs a bundle"). The dynamic imports of
// main.ts and the runner (the manager, S3, restore, test restore) stay lazy chunks.
//
// Usage: tsx hack/bundle.ts [--outdir DIR]   (npm run build runs it after tsc; default outdir dist/bundle)
//
// tsc still type-checks and still builds dist/operator/ (the CLI, `bin/nxt-rollback`, runs that build); the
// bundle is built from the TypeScript sources directly, with the same tsconfig.json.
//
// The bundle needs node_modules beside it only for what it leaves out or resolves at run time: pg-native
// (pg's optional native binding, never installed: external, so pg's lazy `require('pg-native')` fails as it
// does unbundled), the optional native helpers of ws/node-fetch (bufferutil, utf-8-validate, encoding:
// required inside try/catch, absent), and re2js, which the manager's bodyMatch worker loads by path
// (operator/rollback/body-match.ts). The image keeps its production node_modules.
import { realpathSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type Metafile } from 'esbuild';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where `npm run build` writes the bundle; the Dockerfile's ENTRYPOINT runs its main.js. */
export const BUNDLE_DIR = join(REPO_ROOT, 'dist', 'bundle');

/**
 * CommonJS packages bundled into ESM call `require` for Node's built-ins (and for the optional packages
 * above); ESM has no `require`, so each chunk gets one made for its own URL.
 */
const REQUIRE_BANNER =
  "import{createRequire as __nxtCreateRequire}from'node:module';const require=__nxtCreateRequire(import.meta.url);";

export interface BundleResult {
  outdir: string;
  /** esbuild's metafile: every output chunk with its inputs and imports (static and dynamic). */
  metafile: Metafile;
}

/** Bundles operator/main.ts into `outdir` (emptied first) and returns the chunk graph. */
export async function bundleOperator(outdir = BUNDLE_DIR): Promise<BundleResult> {
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: { main: 'operator/main.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    tsconfig: 'tsconfig.json',
    chunkNames: 'chunks/[name]-[hash]',
    external: ['pg-native'],
    banner: { js: REQUIRE_BANNER },
    // Class and function names as written: esbuild renames clashing top-level names across modules
    // (`Foo` -> `Foo2`), which would change `constructor.name` and error names from the tsc build's.
    keepNames: true,
    // Stack traces mapped to operator/*.ts under --enable-source-maps (the tsc build ships maps too); without
    // the sources inlined, which would make the maps several times the size of the code.
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: 'warning',
  });
  return { outdir, metafile: result.metafile };
}

/** Run as a script, not imported: Node realpaths the main module's URL but not argv[1] (a symlinked checkout). */
function isMain(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === realpathSync(argv1);
  } catch {
    return false;
  }
}

if (isMain()) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
  const t0 = performance.now();
  const { outdir, metafile } = await bundleOperator(values.outdir ? resolve(values.outdir) : BUNDLE_DIR);
  const chunks = Object.entries(metafile.outputs).filter(([p]) => p.endsWith('.js'));
  const kib = chunks.reduce((n, [, o]) => n + o.bytes, 0) / 1024;
  console.error(
    `[bundle] ${chunks.length} chunks (${Math.round(kib)} KiB) in ${outdir} in ${Math.round(performance.now() - t0)} ms`,
  );
}
