import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './binaries.js';

const execFileP = promisify(execFile);
export const CRD_DIR = join(REPO_ROOT, 'crds');

/** Applies every CRD in crds/ with the real kubectl (server-side apply) and waits until they are Established. */
export async function installCrds(kubectl: string, kubeconfig: string): Promise<string[]> {
  if (!existsSync(CRD_DIR)) return [];
  const files = readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  if (files.length === 0) return [];
  const args = [`--kubeconfig=${kubeconfig}`];
  await execFileP(kubectl, [
    ...args,
    'apply',
    '--server-side',
    '--force-conflicts',
    ...files.flatMap((f) => ['-f', join(CRD_DIR, f)]),
  ]);
  await execFileP(kubectl, [
    ...args,
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...files.map((f) => `-f=${join(CRD_DIR, f)}`),
  ]);
  return files;
}
