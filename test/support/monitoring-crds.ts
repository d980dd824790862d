import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

// The CRDs come from the Go module proxy with the ordinary `go` client (as hack/build-test-bins.sh gets the
// Kubernetes binaries), cached outside the repository by version.
const PROMETHEUS_OPERATOR = 'github.com/prometheus-operator/prometheus-operator';
const PROMETHEUS_OPERATOR_VERSION = process.env.PROMETHEUS_OPERATOR_VERSION ?? 'v0.85.0';
const CRD_FILES = [
  'monitoring.coreos.com_servicemonitors.yaml',
  'monitoring.coreos.com_prometheusrules.yaml',
];
/** The prometheus-operator CRD files for ServiceMonitor and PrometheusRule, fetched once per version. */
export async function prometheusOperatorCrds(): Promise<string[]> {
  const cacheRoot =
    process.env.NXT_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nxt-rollback-operator');
  const dir = join(cacheRoot, `prometheus-operator-crds-${PROMETHEUS_OPERATOR_VERSION}`);
  const files = CRD_FILES.map((f) => join(dir, f));
  if (files.every((f) => existsSync(f))) return files;
  const scratch = mkdtempSync(join(tmpdir(), 'nxt-gomod-'));
  try {
    const { stdout } = await execFileP(
      'go',
      ['mod', 'download', '-json', `${PROMETHEUS_OPERATOR}@${PROMETHEUS_OPERATOR_VERSION}`],
      { cwd: scratch, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
    ).catch((e: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(
        `go mod download ${PROMETHEUS_OPERATOR}@${PROMETHEUS_OPERATOR_VERSION} failed (is Go installed and the ` +
          `module proxy reachable?): ${e.stderr || e.stdout || e.message}`,
      );
    });
    const module = JSON.parse(stdout) as { Dir?: string; Error?: string };
    if (!module.Dir) throw new Error(`go mod download gave no module directory: ${module.Error ?? stdout}`);
    mkdirSync(dir, { recursive: true });
    for (const f of CRD_FILES) {
      const from = join(module.Dir, 'example', 'prometheus-operator-crd', f);
      copyFileSync(from, join(dir, `${f}.tmp`));
      renameSync(join(dir, `${f}.tmp`), join(dir, f));
    }
    return files;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
