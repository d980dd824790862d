import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureBinaries, REPO_ROOT, runBuildScript } from './binaries.js';
import { waitUntil } from './processes.js';

const execFileP = promisify(execFile);

/**
 * Installs Argo CD's real Application CRD (from the argo-cd Go module sources, fetched and cached by
 * hack/fetch-argocd-crd.sh) into the cluster under test and waits until it is served. Only the CRD: Argo CD's
 * controller cannot be built here (test/support/argocd-self-heal.ts plays its self-heal).
 */
export async function installArgoCdApplicationCrd(
  kubeconfigPath: string,
  log: (m: string) => void = () => {},
): Promise<void> {
  const script = join(REPO_ROOT, 'hack', 'fetch-argocd-crd.sh');
  const crd = await runBuildScript(
    script,
    '[fetch-argocd-crd] ',
    'argo cd crd: ',
    log,
    "Argo CD's Application CRD",
  );
  const kubectl = (await ensureBinaries()).path('kubectl');
  // Large CRD: server-side apply (no last-applied annotation over the size limit).
  await execFileP(kubectl, [
    `--kubeconfig=${kubeconfigPath}`,
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=nxt-test-harness',
    '-f',
    crd,
  ]);
  // `kubectl wait` fails at once while the new CRD has no status yet: ask until it is Established.
  await waitUntil(
    'the Application CRD to be established',
    async () => {
      const { stdout } = await execFileP(kubectl, [
        `--kubeconfig=${kubeconfigPath}`,
        'get',
        'crd/applications.argoproj.io',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Established")].status}',
      ]);
      return stdout.trim() === 'True';
    },
    60_000,
    () => '',
    250,
  );
}
