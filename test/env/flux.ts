import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureBinaries, REPO_ROOT, runBuildScript } from './binaries.js';
import { freePort, ProcessGroup, reapStaleRuns, waitUntil, WORKDIR_PREFIX } from './processes.js';

const execFileP = promisify(execFile);
export const FLUX_CONTROLLERS = ['source-controller', 'kustomize-controller'] as const;
type Controller = (typeof FLUX_CONTROLLERS)[number];

/**
 * Returns the directory with the Flux controllers and their CRDs (`crds/`), building them on first use with
 * hack/build-flux.sh (~10 min cold on 2 cores; a no-op once cached). Its progress lines go to `log`.
 */
export async function ensureFluxBinaries(log: (m: string) => void = () => {}): Promise<string> {
  const script = join(REPO_ROOT, 'hack', 'build-flux.sh');
  const dir = await runBuildScript(script, '[build-flux] ', 'flux binaries: ', log, 'the Flux controllers');
  for (const c of FLUX_CONTROLLERS) {
    if (!existsSync(join(dir, c))) throw new Error(`${c} missing in ${dir}; re-run hack/build-flux.sh`);
  }
  return dir;
}

async function httpOk(url: string): Promise<boolean> {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return r.status === 200;
}

/**
 * The real Flux source-controller and kustomize-controller as host processes against a cluster, watching all
 * namespaces, on free ports of 127.0.0.1. Not part of the global setup: a test file that needs Flux starts
 * it (and stops it) itself, so other files do not pay for it.
 */
export class LocalFlux {
  private constructor(
    readonly workDir: string,
    readonly procs: ProcessGroup,
    /** source-controller's artifact server (what kustomize-controller downloads from). */
    readonly storageUrl: string,
    readonly healthUrls: Record<Controller, string>,
  ) {}

  static async start(opts: { kubeconfigPath: string; log?: (m: string) => void }): Promise<LocalFlux> {
    const log = opts.log ?? (() => {});
    const t0 = Date.now();
    const [dir, bins] = await Promise.all([ensureFluxBinaries(log), ensureBinaries()]);
    reapStaleRuns();
    const workDir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 'flux-'));
    const procs = new ProcessGroup(workDir);
    try {
      // The CRDs are large: server-side apply (no last-applied annotation over the size limit).
      const crds = readdirSync(join(dir, 'crds'))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => join(dir, 'crds', f));
      const kubectl = [bins.path('kubectl'), `--kubeconfig=${opts.kubeconfigPath}`] as const;
      await execFileP(kubectl[0], [
        kubectl[1],
        'apply',
        '--server-side',
        '--force-conflicts',
        '--field-manager=nxt-test-harness',
        ...crds.flatMap((f) => ['-f', f]),
      ]);
      await execFileP(kubectl[0], [
        kubectl[1],
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        ...crds.map((f) => `-f=${f}`),
      ]);

      const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
      const [srcMetrics, srcHealth, storage, ksMetrics, ksHealth] = ports as [
        number,
        number,
        number,
        number,
        number,
      ];
      const storagePath = join(workDir, 'storage');
      const tmp = join(workDir, 'tmp');
      mkdirSync(storagePath);
      mkdirSync(tmp);
      // Neither controller has a --kubeconfig flag; controller-runtime reads KUBECONFIG.
      const env = { ...process.env, KUBECONFIG: opts.kubeconfigPath, TMPDIR: tmp };
      const common = ['--log-level=info', '--log-encoding=json', '--events-addr='];
      procs.start(
        'source-controller',
        join(dir, 'source-controller'),
        [
          ...common,
          `--metrics-addr=127.0.0.1:${srcMetrics}`,
          `--health-addr=127.0.0.1:${srcHealth}`,
          `--storage-addr=127.0.0.1:${storage}`,
          `--storage-adv-addr=127.0.0.1:${storage}`,
          `--storage-path=${storagePath}`,
        ],
        { env },
      );
      procs.start(
        'kustomize-controller',
        join(dir, 'kustomize-controller'),
        [
          ...common,
          `--metrics-addr=127.0.0.1:${ksMetrics}`,
          `--health-addr=127.0.0.1:${ksHealth}`,
          // a Kustomization created before its source has an artifact retries after 5s, not 30s
          '--requeue-dependency=5s',
        ],
        { env },
      );
      const healthUrls: Record<Controller, string> = {
        'source-controller': `http://127.0.0.1:${srcHealth}/readyz`,
        'kustomize-controller': `http://127.0.0.1:${ksHealth}/readyz`,
      };
      const flux = new LocalFlux(workDir, procs, `http://127.0.0.1:${storage}`, healthUrls);
      await Promise.all(
        FLUX_CONTROLLERS.map((c) =>
          waitUntil(
            `${c} ready`,
            async () => {
              if (procs.children.get(c)?.exitCode != null) throw new Error(`${c} exited`);
              return httpOk(healthUrls[c]);
            },
            60_000,
            () => procs.logTail(c),
            250,
          ),
        ),
      );
      log(
        `Flux source-controller + kustomize-controller ready in ${Date.now() - t0} ms (work dir ${workDir})`,
      );
      return flux;
    } catch (e) {
      await procs.stopAll();
      if (process.env.NXT_KEEP_WORKDIR !== 'true') rmSync(workDir, { recursive: true, force: true });
      throw e;
    }
  }

  /** The last lines of a controller's log (for assertion messages). */
  logTail(controller: Controller, lines = 40): string {
    return this.procs.logTail(controller, lines);
  }

  /**
   * A controller's JSON log entries so far (lines that are not JSON are skipped), e.g. to see when
   * kustomize-controller finished a periodic reconcile: nothing in a Kustomization's status changes then.
   */
  logEntries(controller: Controller): Record<string, unknown>[] {
    const file = join(this.workDir, 'logs', `${controller}.log`);
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  async stop(): Promise<void> {
    await this.procs.stopAll();
    if (process.env.NXT_KEEP_WORKDIR !== 'true') rmSync(this.workDir, { recursive: true, force: true });
  }
}
