import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bundleOperator, type BundleResult } from '../../hack/bundle.js';
import { startOperatorProcess, type OperatorProcess } from '../env/operator-process.js';
import { createTestNamespace, deleteTestNamespace, kubectl } from '../support/kube.js';
import { applyPlan, getPlan } from '../support/plans.js';
import { createTestDatabase, runnerPgEnv, withClient } from '../support/postgres.js';
import { createBucket, s3RunnerEnv, useS3Server } from '../support/s3.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

// The image's entry point as the image runs it: operator/main.ts bundled by hack/bundle.ts (esbuild, code
// splitting) and started by plain node, with a loader hook (test/support/module-trace.mjs) recording every
// module the process loads. A backup against the real PostgreSQL loads a few chunks of the bundle and none
// of the manager's packages; the AWS SDK chunk loads (and works) only for an S3 location; the bundled
// manager runs against the real control plane (client-node, winston, prom-client and the bodyMatch worker's
// re2js, all through the bundle).

const REPO = fileURLToPath(new URL('../..', import.meta.url));
// Inside the repository, as dist/bundle is in the image: the manager resolves re2js from node_modules.
const OUT = join(REPO, '.tmp', `bundle-it-${process.pid}`);
const TRACE_HOOK = join(REPO, 'test', 'support', 'module-trace.mjs');
const MANAGER_PACKAGES = ['@kubernetes/client-node', 'winston', 'prom-client'];
const root = mkdtempSync(join(tmpdir(), 'nxt-bundle-it-'));
let bundle: BundleResult;
let runs = 0;

/** The npm packages whose code is in a chunk (from esbuild's metafile). */
function packagesIn(chunk: string): Set<string> {
  const out = new Set<string>();
  for (const input of Object.keys(bundle.metafile.outputs[chunk]?.inputs ?? {})) {
    const m = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) out.add(m[1]!);
  }
  return out;
}
const sourcesIn = (chunk: string) =>
  Object.keys(bundle.metafile.outputs[chunk]?.inputs ?? {}).filter((i) => i.startsWith('operator/'));
/** The metafile's name of the chunk holding `source` (e.g. operator/manager.ts). */
const chunkOf = (source: string) =>
  Object.keys(bundle.metafile.outputs).find((o) => o.endsWith('.js') && sourcesIn(o).includes(source));

interface Loaded {
  /** Files loaded as ES modules, as metafile output names (relative to the repository). */
  chunks: string[];
  /** ES modules loaded from anywhere but the bundle. */
  otherEsm: string[];
  /** CommonJS files loaded (require's cache at exit). */
  cjs: string[];
  packages: Set<string>;
}

function readTrace(file: string): Loaded {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  const esm = lines.filter((l) => l.startsWith('esm ')).map((l) => relative(REPO, fileURLToPath(l.slice(4))));
  const chunks = esm.filter((p) => p in bundle.metafile.outputs);
  const packages = new Set(chunks.flatMap((c) => [...packagesIn(c)]));
  return {
    chunks,
    otherEsm: esm.filter((p) => !(p in bundle.metafile.outputs)),
    cjs: lines.filter((l) => l.startsWith('cjs ')).map((l) => l.slice(4)),
    packages,
  };
}

interface Run {
  code: number | null;
  result: Record<string, any> | undefined;
  stderr: string;
  loaded: Loaded;
}

/** `node --import module-trace.mjs OUT/main.js ...argv`, as a Job pod runs the image's entry point. */
async function runBundle(argv: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const n = runs++;
  const terminationLog = join(root, `termination-${n}`);
  const trace = join(root, `trace-${n}`);
  const child = spawn(
    process.execPath,
    ['--import', TRACE_HOOK, join(OUT, 'main.js'), ...argv, '--termination-log', terminationLog],
    { env: { ...env, NXT_MODULE_TRACE: trace }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  const result = existsSync(terminationLog)
    ? (JSON.parse(readFileSync(terminationLog, 'utf8')) as Record<string, any>)
    : undefined;
  return { code, result, stderr, loaded: readTrace(trace) };
}

const s3 = useS3Server();

beforeAll(async () => {
  bundle = await bundleOperator(OUT);
}, 120_000);
afterAll(() => {
  rmSync(OUT, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

describe('the bundled entry point (hack/bundle.ts)', () => {
  it('splits the manager and the runner: the bundle carries the manager packages, in chunks of their own', () => {
    const manager = chunkOf('operator/manager.ts');
    const runner = chunkOf('operator/backup/runner/cli.ts');
    expect(manager, 'a chunk holds operator/manager.ts').toBeDefined();
    expect(runner, 'a chunk holds the runner').toBeDefined();
    expect(manager).not.toBe(runner);
    const all = new Set(Object.keys(bundle.metafile.outputs).flatMap((o) => [...packagesIn(o)]));
    for (const p of [...MANAGER_PACKAGES, '@aws-sdk/client-s3', 'pg'])
      expect(all.has(p), `the bundle contains ${p}`).toBe(true);
  });

  it('a backup to a volume loads only its chunks of the bundle: no client-node, winston, prom-client, zod or AWS SDK', async () => {
    const db = await createTestDatabase('bundle');
    await withClient(db.url, (c) =>
      c.query(
        'create table t (id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 500) g',
      ),
    );
    const storage = join(root, 'backups');
    mkdirSync(storage);
    const r = await runBundle(['backup', '--storage-dir', storage, '--id', 'bundle-1'], runnerPgEnv(db.name));
    expect(r.code, `exit code; stderr:\n${r.stderr.slice(-3000)}`).toBe(0);
    expect(r.result).toMatchObject({ operation: 'backup', success: true, id: 'bundle-1' });
    const manifest = JSON.parse(readFileSync(join(storage, 'bundle-1.manifest.json'), 'utf8'));
    expect(manifest.tables).toEqual({ 'public.t': 500 });

    const { chunks, otherEsm, cjs, packages } = r.loaded;
    expect(chunks, 'the trace saw the entry point').toContain(relative(REPO, join(OUT, 'main.js')));
    expect(otherEsm, 'no ES module outside the bundle').toEqual([]);
    expect(cjs, 'no CommonJS file from anywhere').toEqual([]);
    expect(packages.has('pg'), 'the backup ran pg from its chunks').toBe(true);
    // zod too: the runner checks its own manifests by hand (operator/backup/runner/import-graph.test.ts).
    for (const p of [...MANAGER_PACKAGES, '@aws-sdk/client-s3', 'zod'])
      expect(packages.has(p), `a backup does not load ${p}`).toBe(false);
    for (const source of [
      'operator/manager.ts',
      'operator/backup/runner/s3-storage.ts',
      'operator/backup/runner/restore.ts',
    ])
      expect(chunks, `a backup does not load the chunk of ${source}`).not.toContain(chunkOf(source));
    expect(chunks.length, `a few chunks, not ~50 modules: ${chunks.join(', ')}`).toBeLessThanOrEqual(16);

    const verify = await runBundle(
      ['verify', '--storage-dir', storage, '--id', 'bundle-1'],
      runnerPgEnv(db.name),
    );
    expect(verify.code, verify.stderr.slice(-3000)).toBe(0);
    expect(verify.result).toMatchObject({ operation: 'verify', success: true, valid: true });
  });

  it('an argument error exits 2 with InvalidArguments and the usage', async () => {
    const r = await runBundle(['verify', '--storage-dir', root], { PATH: process.env.PATH });
    expect(r.code).toBe(2);
    expect(r.result).toMatchObject({ operation: 'verify', success: false, reason: 'InvalidArguments' });
    expect(r.result?.message).toMatch(/--id/);
  });

  it('a backup to S3 loads the AWS SDK chunk lazily, and it works bundled', async () => {
    const db = await createTestDatabase('bundles3');
    await withClient(db.url, (c) => c.query('create table t (id int); insert into t values (1), (2)'));
    const bucket = await createBucket(s3());
    const env = s3RunnerEnv(s3(), db.name);
    const url = `s3://${bucket}/bundle`;
    const r = await runBundle(['backup', '--storage-url', url, '--id', 'bundle-s3'], env);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.result).toMatchObject({ operation: 'backup', success: true });
    expect(r.loaded.packages.has('@aws-sdk/client-s3')).toBe(true);
    expect(r.loaded.otherEsm).toEqual([]);
    for (const p of MANAGER_PACKAGES)
      expect(r.loaded.packages.has(p), `an S3 backup does not load ${p}`).toBe(false);
    const verify = await runBundle(['verify', '--storage-url', url, '--id', 'bundle-s3'], env);
    expect(verify.code, verify.stderr.slice(-3000)).toBe(0);
    expect(verify.result).toMatchObject({ operation: 'verify', success: true, valid: true });
  });

  describe('the bundled manager against the control plane', () => {
    let ns = '';
    let op: OperatorProcess | undefined;
    const trace = join(root, 'trace-manager');

    beforeAll(async () => {
      ns = await createTestNamespace('bundle');
      op = await startOperatorProcess({
        kubeconfigPath: inject('kubeconfigPath'),
        entry: ['--import', TRACE_HOOK, join(OUT, 'main.js')],
        env: { WATCH_NAMESPACES: ns, NXT_MODULE_TRACE: trace },
      });
      await op.waitReady();
    });
    afterAll(async () => {
      await op?.stop();
      await deleteTestNamespace(ns);
    });

    it('rolls a Deployment back with a bodyMatch check (re2js worker), serves metrics, and loads no runner chunk', async () => {
      const metrics = await fetch(op!.metricsUrl).then((r) => r.text());
      expect(metrics, 'prom-client serves the operator metrics').toMatch(/^nxt_/m);
      await deploymentWithHistory(ns, 'web', ['nginx:1.25', 'nginx:1.26']);
      const server = createServer((_q, res) => res.writeHead(200).end('status: ok'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const port = (server.address() as { port: number }).port;
        await applyPlan(ns, 'undo-web', {
          scope: 'app',
          reason: 'bundle smoke test',
          targets: { deployments: [{ name: 'web' }] },
          validation: {
            timeout: '1m',
            http: [{ url: `http://127.0.0.1:${port}/`, expectStatus: 200, bodyMatch: 'status: (ok|fine)' }],
          },
        });
        await kubectl('-n', ns, 'wait', '--for=condition=Succeeded', 'rbp/undo-web', '--timeout=90s');
      } finally {
        server.close();
      }
      const plan = await getPlan(ns, 'undo-web');
      expect(plan.status.phase).toBe('Succeeded');
      expect(await imageOf(ns, 'web')).toBe('nginx:1.25');
      expect(op!.logs(), 'winston logs the reconcile').toMatch(/caches synced, starting controllers/);

      const loaded = readTrace(trace);
      for (const p of MANAGER_PACKAGES) expect(loaded.packages.has(p), `the manager loads ${p}`).toBe(true);
      expect(loaded.chunks).not.toContain(chunkOf('operator/backup/runner/cli.ts'));
      expect(loaded.packages.has('@aws-sdk/client-s3'), 'the manager does not load the AWS SDK').toBe(false);
    });
  });
});
