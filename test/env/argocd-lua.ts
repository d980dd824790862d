import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, runBuildScript } from './binaries.js';

const execFileP = promisify(execFile);

/** The folder with Argo CD's layout of the health checks and actions, and the generated argocd-cm snippet. */
export const ARGOCD_DOCS = join(REPO_ROOT, 'docs', 'integrations', 'argocd');
export const RESOURCE_CUSTOMIZATIONS = join(ARGOCD_DOCS, 'resource_customizations');
/** The clock the action tests run with (their expected outputs carry it). */
export const ACTION_TEST_CLOCK = '2026-11-29T14:30:00Z';

/**
 * The path of hack/argocd-lua's binary (gopher-lua, loaded as Argo CD loads resource customizations), built on
 * first use by hack/build-argocd-lua.sh (~20 s cold on 2 cores; cached outside the repo, keyed by version and
 * source hash).
 */
export const ensureArgoCdLua = (log: (m: string) => void = () => {}): Promise<string> =>
  runBuildScript(
    join(REPO_ROOT, 'hack', 'build-argocd-lua.sh'),
    '[build-argocd-lua] ',
    'argocd-lua: ',
    log,
    'the Argo CD Lua test runner',
  );

/** One evaluation of a script against one test input (hack/argocd-lua/main.go `result`). */
export interface LuaResult {
  kind: 'health' | 'discovery' | 'action';
  script: string;
  source: 'built-in' | 'argocd-cm';
  openLibs: boolean;
  input: string;
  ok: boolean;
  expected?: unknown;
  actual?: unknown;
  error?: string;
}

export interface LuaRun {
  exitCode: number;
  results: LuaResult[];
  /** The closing line: `N passed, N failed`. */
  summary: string;
  stderr: string;
}

/** Runs every health_test.yaml and action_test.yaml under `dir` (and, with `configMap`, its scripts too). */
export async function runArgoCdLuaTests(
  bin: string,
  opts: { dir?: string; configMap?: string; now?: string } = {},
): Promise<LuaRun> {
  const args = ['-dir', opts.dir ?? RESOURCE_CUSTOMIZATIONS, '-now', opts.now ?? ACTION_TEST_CLOCK];
  if (opts.configMap) args.push('-configmap', opts.configMap);
  let stdout: string, stderr: string, exitCode: number;
  try {
    ({ stdout, stderr } = await execFileP(bin, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }));
    exitCode = 0;
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e; // not started, or killed by the timeout
    ({ stdout = '', stderr = '', code: exitCode } = err as { stdout: string; stderr: string; code: number });
  }
  const lines = stdout.trim().split('\n');
  const results = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LuaResult);
  return { exitCode, results, summary: lines.at(-1) ?? '', stderr };
}
