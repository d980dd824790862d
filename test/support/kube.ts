import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';

const execFileP = promisify(execFile);

/** Clients for the cluster under test, built from the kubeconfig the global setup provides. */
export function testClients() {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}

export function binPath(name: 'kubectl' | 'helm'): string {
  return join(inject('binDir'), name);
}

/** Runs the real kubectl against the cluster under test. */
export async function kubectl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(
      binPath('kubectl'),
      [`--kubeconfig=${inject('kubeconfigPath')}`, ...args],
      {
        maxBuffer: 32 * 1024 * 1024,
      },
    );
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
  }
}

/** Creates a uniquely named namespace (Pod Security `restricted` enforced) and returns its name. */
export async function createTestNamespace(prefix: string): Promise<string> {
  const { core } = testClients();
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({
    body: {
      metadata: {
        name,
        labels: {
          'nxt.test/e2e': 'true',
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
        },
      },
    },
  });
  return name;
}

export async function deleteTestNamespace(name: string): Promise<void> {
  const { core } = testClients();
  await core.deleteNamespace({ name }).catch(() => {});
}

/**
 * Waits until `probe` returns a value that is not undefined/false, re-checking every `intervalMs`.
 * On timeout the error names what was expected and the last value seen.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last: ${String((last as Error)?.message ?? last)}`,
  );
}

/** A restricted-compliant container spec for test workloads. */
export function restrictedContainer(name: string, image: string) {
  return {
    name,
    image,
    securityContext: {
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
      runAsUser: 65532,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}
