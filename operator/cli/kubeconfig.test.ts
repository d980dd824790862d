import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliContext } from './context.js';
import { CliError, ExitCode } from './errors.js';

const kubeconfig = (current: string, server: string, extra = '') => `apiVersion: v1
kind: Config
current-context: ${current}
clusters:
- name: shared
  cluster: { server: "${server}" }
- name: only-${current}
  cluster: { server: "${server}/only" }
users:
- name: shared
  user: { token: token-of-${current} }
contexts:
- name: ${current}
  context: { cluster: shared, user: shared, namespace: ns-${current} }
- name: both
  context: { cluster: only-${current}, user: shared }
${extra}`;

const thrown = (f: () => unknown): CliError => {
  try {
    f();
  } catch (e) {
    return e as CliError;
  }
  throw new Error('expected an error');
};

describe('the kubeconfig, loaded like kubectl', () => {
  let dir: string;
  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nxt-kubeconfig-'));
    process.env.HOME = dir;
    delete process.env.KUBECONFIG;
  });
  afterEach(() => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });

  it('reads a kubeconfig with only comments as empty (kubectl does), not as an error', () => {
    const comments = join(dir, 'comments');
    const real = join(dir, 'real');
    writeFileSync(comments, '# nothing here yet\n');
    writeFileSync(real, kubeconfig('real', 'https://127.0.0.1:3003'));
    process.env.KUBECONFIG = [comments, real].join(delimiter);
    expect(cliContext({}).kc.getCurrentContext()).toBe('real');
  });

  it('merges $KUBECONFIG files like kubectl: the first current-context and first definition of each name win', () => {
    const first = join(dir, 'first');
    const second = join(dir, 'second');
    writeFileSync(first, kubeconfig('first', 'https://127.0.0.1:1001'));
    writeFileSync(second, kubeconfig('second', 'https://127.0.0.1:2002'));
    process.env.KUBECONFIG = [join(dir, 'missing'), first, second].join(delimiter);
    const ctx = cliContext({});
    expect(ctx.kc.getCurrentContext(), 'the first file that sets current-context wins').toBe('first');
    expect(ctx.namespace).toBe('ns-first');
    expect(ctx.kc.getCurrentCluster()?.server, 'cluster "shared" as the first file defines it').toBe(
      'https://127.0.0.1:1001',
    );
    expect(ctx.kc.getCurrentUser()?.token).toBe('token-of-first');
    expect(ctx.kc.getContextObject('both')?.cluster, 'context "both" as the first file defines it').toBe(
      'only-first',
    );
    expect(ctx.kc.getContextObject('second'), "the second file's own context is there too").toBeDefined();
    expect(cliContext({ context: 'second' }).kc.getCurrentCluster()?.server).toBe('https://127.0.0.1:1001');
  });

  it('says where to set a kubeconfig when there is none (not localhost:8080)', () => {
    const e = thrown(() => cliContext({}));
    expect(e).toBeInstanceOf(CliError);
    expect(e.exitCode).toBe(ExitCode.Unavailable);
    expect(e.message).toBe('no kubeconfig found (set KUBECONFIG or --kubeconfig)');
  });

  it('reports a kubeconfig that is not valid YAML by reason and line, never its content (tokens)', () => {
    const file = join(dir, 'broken');
    writeFileSync(
      file,
      `apiVersion: v1
users:
- name: admin
  user:
    token: sekret-token-1234567890
   bad: indentation
`,
    );
    const e = thrown(() => cliContext({ kubeconfig: file }));
    expect(e.exitCode).toBe(ExitCode.Unavailable);
    expect(e.message).not.toContain('sekret-token');
    expect(e.message).toMatch(/line \d+, column \d+/);
    expect(e.message).toContain(file);
  });
});
