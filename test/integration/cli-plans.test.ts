import { execFile } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Annotation } from '../../operator/api/v1alpha1/common.js';
import { ShippedApprovals } from '../support/approvals.js';
import { CLI, parseJson, runCli, type CliResult } from '../support/cli.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  restrictedContainer,
  testClients,
} from '../support/kube.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { applyPlan, getPlan, waitPlanPhase } from '../support/plans.js';
import { kubectlWith, limitedUserKubeconfig, operatorKubeconfig } from '../support/rbac.js';
import {
  deploymentWithHistory,
  imageOf,
  settledResourceVersion,
  waitRolledOut,
  writersOf,
} from '../support/workloads.js';

const execFileP = promisify(execFile);

/** NXT_CLI_RECORD=<file>: appends each recorded command's output there (the examples in docs/cli/plans.md). */
function record(title: string, r: CliResult | string) {
  const file = process.env.NXT_CLI_RECORD;
  if (!file) return;
  const text =
    typeof r === 'string' ? r : `${r.stdout}${r.stderr ? `[stderr]\n${r.stderr}` : ''}[exit ${r.code}]\n`;
  appendFileSync(file, `### ${title}\n${text}\n`);
}

// The plan commands of nxt-rollback (emergency, status, history, approve, veto) as real processes against the
// real control plane, with the operator running as its own process.
describe('nxt-rollback emergency, status, history, approve, veto', () => {
  const { apps } = testClients();
  let ns = '';
  let op: OperatorProcess;
  let http: Server;
  let base = '';
  /** Answers per path: /down 503, /flaky/<id> 503 for the first two requests then 200. */
  const hits = new Map<string, number>();
  const cli = (args: string[], opts?: Parameters<typeof runCli>[1]) => runCli(['-n', ns, ...args], opts);
  const show = (r: CliResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  const createdName = (r: CliResult) => /created RollbackPlan [^/]+\/(\S+)/.exec(r.stdout)?.[1] ?? '';
  const planCount = async () =>
    JSON.parse(await kubectl('-n', ns, 'get', 'rollbackplans', '-o', 'json')).items.length as number;

  /** Revision 1 asks for a node that does not exist: a rollback to it never finishes rolling out. */
  async function previousRevisionUnschedulable(name: string) {
    const labels = { app: name };
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              nodeSelector: { 'nxt.test/no-such-node': 'true' },
              containers: [restrictedContainer('app', 'nginx:1.25')],
            },
          },
        },
      },
    });
    await kubectl(
      '-n',
      ns,
      'patch',
      'deployment',
      name,
      '--type=json',
      '-p',
      JSON.stringify([
        { op: 'remove', path: '/spec/template/spec/nodeSelector' },
        { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'nginx:1.26' },
      ]),
    );
    await waitRolledOut(ns, name, '2');
  }

  beforeAll(async () => {
    ns = await createTestNamespace('cli-plans');
    op = await startOperator({ env: { WATCH_NAMESPACES: ns } });
    http = createServer((req, res) => {
      const path = req.url ?? '/';
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      const ok = path.startsWith('/flaky/') && n > 2;
      res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'down');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    await op.waitReady();
    await Promise.all([
      deploymentWithHistory(ns, 'web', ['nginx:1.25', 'nginx:1.26', 'nginx:1.27']),
      deploymentWithHistory(ns, 'api', ['nginx:1.25', 'nginx:1.26']),
      deploymentWithHistory(ns, 'dry', ['nginx:1.25', 'nginx:1.26']),
      previousRevisionUnschedulable('stuck'),
      deploymentWithHistory(ns, 'down', ['nginx:1.25', 'nginx:1.26']),
      deploymentWithHistory(ns, 'tty', ['nginx:1.25', 'nginx:1.26']),
    ]);
  });
  afterAll(async () => {
    await op?.kill();
    http?.close();
    await deleteTestNamespace(ns);
  });

  it('emergency --scope app rolls the Deployment back and prints one plain line per change (no terminal)', async () => {
    const r = await cli([
      'emergency',
      '--scope',
      'app',
      'web',
      '--reason',
      'bad release',
      '--http',
      `${base}/flaky/plain`,
    ]);
    record('emergency (no terminal)', r);
    expect(r.code, show(r)).toBe(0);
    expect(await imageOf(ns, 'web')).toBe('nginx:1.26');
    const name = createdName(r);
    expect(name).toMatch(/^emergency-app-\d{8}-\d{6}-[0-9a-f]{4}$/);
    expect(r.stdout).toContain(`created RollbackPlan ${ns}/${name} (scope app, severity critical)`);
    expect(r.stdout).toMatch(/^phase Running$/m);
    expect(r.stdout).toMatch(/^step AppRollback Succeeded \(\S+\)/m);
    // The check's attempts show as they happen, each change on its own line.
    expect(r.stdout).toMatch(/^step PostValidation Running: .*attempt 1 of 3: got HTTP 503/m);
    expect(r.stdout).toMatch(/^step PostValidation Succeeded.*\n^phase Succeeded$/m);
    expect(r.stdout).toMatch(/^Succeeded in \S+; RTO met \(recovery took/m);
    // eslint-disable-next-line no-control-regex -- no ANSI escape of any kind without a terminal
    expect(r.stdout, 'no cursor movement or colour without a terminal').not.toMatch(/\x1b/);
    const plan = await getPlan(ns, name);
    expect(plan.spec).toMatchObject({
      scope: 'app',
      severity: 'critical',
      reason: 'bad release',
      validation: { http: [{ url: `${base}/flaky/plain`, expectStatus: 200 }] },
    });
    expect(plan.status.phase).toBe('Succeeded');
  });

  it('emergency -o json prints the final plan summary (progress on stderr)', async () => {
    const r = await cli(['-o', 'json', 'emergency', '--scope', 'app', 'api', '--name', 'undo-api']);
    record('emergency -o json', r);
    expect(r.code, show(r)).toBe(0);
    const s = parseJson(r);
    expect(s).toMatchObject({ name: 'undo-api', namespace: ns, phase: 'Succeeded', severity: 'critical' });
    expect(typeof s.durationSeconds).toBe('number');
    expect(typeof s.rtoMet).toBe('boolean');
    expect(s.deployments).toEqual([
      expect.objectContaining({ name: 'api', fromRevision: 2, toRevision: 1, result: 'RolledBack' }),
    ]);
    expect(s.steps.map((x: any) => x.name)).toEqual(expect.arrayContaining(['PreValidation', 'AppRollback']));
    expect(s.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    expect(s.database).toBeNull();
    expect(r.stderr).toMatch(/^phase Succeeded$/m);
    expect(await imageOf(ns, 'api')).toBe('nginx:1.25');
  });

  it('emergency on a Deployment that does not exist fails with the reason (exit 1)', async () => {
    const r = await cli(['emergency', '--scope', 'app', 'nope']);
    record('emergency: target missing', r);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toMatch(/^Failed: TargetNotFound: .*"nope"/m);
  });

  it('emergency whose --http check cannot pass fails when the validation timeout passes (exit 1)', async () => {
    const r = await cli([
      'emergency',
      '--scope',
      'app',
      'down',
      '--http',
      `${base}/down`,
      '--validation-timeout',
      '3s',
    ]);
    record('emergency: http check never passes', r);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toMatch(/^Failed: HTTPCheck(Failed|Timeout): .*\/down/m);
  });

  it('emergency --dry-run shows revisions, images and the template diff, and changes nothing', async () => {
    const rv = await settledResourceVersion(ns, 'dry');
    const r = await cli(['emergency', '--scope', 'app', 'dry', '--dry-run']);
    record('emergency --dry-run', r);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('Would succeed: yes');
    expect(r.stdout).toContain('Deployment dry: rollback (revision 2 -> 1)');
    expect(r.stdout).toContain('image app: nginx:1.26 -> nginx:1.25');
    expect(r.stdout).toMatch(/^\s+-\s+- image: nginx:1\.26$/m);
    expect(r.stdout).toMatch(/^\s+\+\s+- image: nginx:1\.25$/m);
    expect(r.stdout).toContain('no other active RollbackPlan holds a target');
    const after = await apps.readNamespacedDeployment({ name: 'dry', namespace: ns });
    expect(after.metadata?.resourceVersion, 'the dry run wrote nothing to the Deployment').toBe(rv);
    expect(await writersOf(ns, 'dry')).not.toContainEqual(expect.stringMatching(/nxt-rollback/));
    const plan = await getPlan(ns, createdName(r));
    expect(plan.spec.dryRun).toBe(true);
    expect(plan.status.phase).toBe('DryRunComplete');

    const noWait = await cli(['emergency', '--scope', 'app', 'dry', '--dry-run', '--no-wait']);
    expect(noWait.code, show(noWait)).toBe(0);
    expect(noWait.stdout).toMatch(/^emergency-app-\d{8}-\d{6}-[0-9a-f]{4}\n$/);
    expect((await getPlan(ns, noWait.stdout.trim())).spec.dryRun).toBe(true);

    const missing = await cli(['-o', 'json', 'emergency', '--scope', 'app', 'ghost', '--dry-run']);
    record('emergency --dry-run -o json (missing Deployment)', missing);
    expect(missing.code, show(missing)).toBe(1);
    expect(parseJson(missing).dryRunReport).toMatchObject({ wouldSucceed: false });
  });

  it('refuses bad combinations before creating anything (exit 2), and shows the API server refusing a name', async () => {
    const before = await planCount();
    const noTargets = await cli(['emergency', '--scope', 'app']);
    record('usage error', noTargets);
    expect(noTargets.code, show(noTargets)).toBe(2);
    expect(noTargets.stderr).toContain('--scope app needs at least one Deployment');
    const noSchedule = await cli(['emergency', '--scope', 'database']);
    expect(noSchedule.code, show(noSchedule)).toBe(2);
    expect(noSchedule.stderr).toContain('--scope database needs --schedule');
    const badScope = await cli(['emergency', '--scope', 'everything', 'web']);
    expect(badScope.code, show(badScope)).toBe(2);
    const longName = await cli(['emergency', '--scope', 'app', 'web', '--name', 'x'.repeat(60)]);
    record('refused by the API server', longName);
    expect(longName.code, show(longName)).toBe(2);
    expect(longName.stderr).toContain(
      'the API server refused the RollbackPlan: RollbackPlan.rollback.nxtnewday.io',
    );
    expect(longName.stderr).toContain('metadata.name of a RollbackPlan must be a DNS label');
    expect(await planCount(), 'no plan was created').toBe(before);
  });

  it('--timeout ends following with exit 5 while the plan goes on; status lists it as active', async () => {
    const r = await cli([
      'emergency',
      '--scope',
      'app',
      'stuck',
      '--name',
      'stuck-plan',
      '--validation-timeout',
      '5m',
      '--timeout',
      '1s',
    ]);
    record('--timeout 1s', r);
    expect(r.code, show(r)).toBe(5);
    expect(r.stderr).toContain(`RollbackPlan ${ns}/stuck-plan did not finish within --timeout 1s`);
    expect(r.stderr).toContain(`nxt-rollback -n ${ns} status stuck-plan`);
    expect(r.stderr).toContain('the plan stuck-plan was created and goes on');
    const active = await eventually('stuck-plan to show as Running in status', async () => {
      const s = await cli(['status']);
      if (s.code === 0 && /^stuck-plan\s+app\s+critical\s+Running\s/m.test(s.stdout)) return s;
      throw new Error(show(s));
    });
    record('status', active);
    expect(active.stdout).toMatch(/^NAME\s+SCOPE\s+SEVERITY\s+PHASE\s+STEP\s+AGE\s+MESSAGE$/m);
    expect(active.stdout, 'ended plans are not listed').not.toContain('undo-api');
    const json = parseJson(await cli(['-o', 'json', 'status']));
    expect(json.map((p: any) => p.name)).toEqual(['stuck-plan']);
  });

  it('status <plan> shows the plan in detail, and -o json its summary; a missing plan is exit 3', async () => {
    const r = await cli(['status', 'undo-api']);
    record('status <plan>', r);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^Phase:\s+Succeeded$/m);
    expect(r.stdout).toMatch(/^Severity:\s+critical$/m);
    expect(r.stdout).toMatch(/^Trigger:\s+Manual/m);
    expect(r.stdout).toMatch(/^RTO met:\s+(yes|no) \(recovery took/m);
    expect(r.stdout).toMatch(/^Conditions:\n\s+TYPE\s+STATUS\s+REASON\s+AGE\s+MESSAGE$/m);
    expect(r.stdout).toMatch(/^Steps:\n\s+STEP\s+RESULT\s+DURATION\s+MESSAGE$/m);
    expect(r.stdout).toMatch(/^\s+AppRollback\s+Succeeded\s/m);
    expect(r.stdout).toMatch(/^\s+api\s+2\s+1\s+RolledBack/m);
    expect(parseJson(await cli(['-o', 'json', 'status', 'undo-api']))).toMatchObject({
      name: 'undo-api',
      phase: 'Succeeded',
    });
    const missing = await cli(['status', 'no-such-plan']);
    record('status: missing plan', missing);
    expect(missing.code, show(missing)).toBe(3);
    expect(missing.stderr).toContain('no-such-plan');
    expect((await cli(['approve', 'no-such-plan'])).code).toBe(3);
  });

  it('refuses flags taken as values, swallowed npm flags and escaping names (exit 2), creating nothing', async () => {
    const names = async () =>
      parseJson(await cli(['-o', 'json', 'history', '--limit', '1000'])).map((p: any) => p.name);
    const before = await names();
    const asValue = await cli(['emergency', '--scope', 'app', '--name', '--dry-run', 'api']);
    record('--name --dry-run', asValue);
    expect(asValue.code, show(asValue)).toBe(2);
    expect(asValue.stderr).toContain('--name needs a value, but the next argument is the flag --dry-run');
    // `npm run rollback:emergency-app api --dry-run`: npm keeps --dry-run and passes only `api`.
    const npm = await cli(['emergency', '--scope', 'app', 'api'], {
      env: {
        npm_lifecycle_event: 'rollback:emergency-app',
        npm_lifecycle_script: 'bin/nxt-rollback emergency --scope app',
        npm_config_dry_run: 'true',
      },
    });
    record('npm swallowed --dry-run', npm);
    expect(npm.code, show(npm)).toBe(2);
    expect(npm.stderr).toContain('npm run rollback:emergency-app -- <arguments> --dry-run');
    const dotdot = await cli(['-n', '..', 'status', 'undo-api']);
    expect(dotdot.code, show(dotdot)).toBe(2);
    expect((await cli(['status', '..'])).code).toBe(2);
    expect(await names(), 'no plan was created by the refused commands').toEqual(before);
  });

  it('history lists recent plans newest first, as a table and as JSON', async () => {
    const r = await cli(['history']);
    record('history', r);
    expect(r.code, show(r)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+SCOPE\s+SEVERITY\s+TRIGGER\s+RESULT\s+DURATION\s+RTO MET\s+AGE$/);
    expect(r.stdout).toMatch(/^undo-api\s+app\s+critical\s+Manual\s+Succeeded\s+\S+\s+(yes|no)\s+\S+$/m);
    expect(r.stdout).toMatch(/^emergency-app-\S+\s+app\s+critical\s+DryRun\s+DryRunComplete\s/m);
    const json = parseJson(await cli(['-o', 'json', 'history']));
    const names = json.map((e: any) => e.name);
    expect(names.indexOf('stuck-plan'), 'newest first').toBeLessThan(names.indexOf('undo-api'));
    expect(json.find((e: any) => e.name === 'undo-api')).toEqual({
      name: 'undo-api',
      namespace: ns,
      scope: 'app',
      severity: 'critical',
      trigger: 'Manual',
      result: 'Succeeded',
      durationSeconds: expect.any(Number),
      rtoMet: expect.any(Boolean),
      createdAt: expect.any(String),
    });
    expect(parseJson(await cli(['-o', 'json', 'history', '--limit', '2']))).toHaveLength(2);
    const all = await cli(['history', '-A', '--limit', '500']);
    expect(all.stdout.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+SCOPE/);
    expect(all.stdout).toMatch(new RegExp(`^${ns}\\s+undo-api\\s`, 'm'));
  });

  it('a user who may read plans but not create them gets exit 4 naming create and rollbackplans', async () => {
    const kc = await limitedUserKubeconfig({
      namespace: ns,
      serviceAccount: 'viewer',
      verbs: ['get', 'list', 'watch'],
      resources: ['rollbackplans.rollback.nxtnewday.io'],
    });
    await eventually(
      'RBAC to let the viewer list plans',
      async () => (await cli(['history'], { kubeconfig: kc })).code === 0,
    );
    const r = await cli(['emergency', '--scope', 'app', 'web'], { kubeconfig: kc });
    record('limited user', r);
    expect(r.code, show(r)).toBe(4);
    expect(r.stderr).toMatch(/cannot create resource "rollbackplans"/);
    expect((await cli(['status', 'undo-api'], { kubeconfig: kc })).code).toBe(0);
  });

  describe('on a terminal (tmux)', () => {
    const socket = `nxt-cli-${randomBytes(4).toString('hex')}`;
    const tmux = (...args: string[]) => execFileP('tmux', ['-L', socket, ...args]).then((r) => r.stdout);
    let socketPath = '';
    afterAll(async () => {
      await tmux('kill-server').catch(() => undefined);
      // tmux leaves its socket file behind.
      if (socketPath) rmSync(socketPath, { force: true });
    });

    it('redraws the progress in place while the plan runs, and ends with Succeeded', async () => {
      const cmd = [
        CLI,
        `--kubeconfig=${inject('kubeconfigPath')}`,
        '-n',
        ns,
        'emergency',
        '--scope',
        'app',
        'tty',
        '--name',
        'tty-plan',
        '--http',
        `${base}/flaky/tty`,
      ].join(' ');
      await tmux(
        'new-session',
        '-d',
        '-x',
        '200',
        '-y',
        '50',
        '-s',
        'cli',
        `${cmd}; echo EXIT=$?; sleep 120`,
      );
      socketPath = (await tmux('display-message', '-p', '#{socket_path}')).trim();
      const screens: string[] = [];
      await eventually(
        'the command to end on the tmux screen',
        async () => {
          const s = await tmux('capture-pane', '-p', '-t', 'cli');
          screens.push(s);
          return s.includes('EXIT=');
        },
        90_000,
        200,
      );
      const last = screens[screens.length - 1]!;
      const mid = screens.filter((x) => /^phase Running/m.test(x)).pop();
      if (mid) record('tmux screen while running', mid);
      record('tmux screen at the end', last);
      const lines = (s: string) => s.split('\n').filter((l) => l.trim());
      expect(last, last).toMatch(/^EXIT=0$/m);
      expect(last).toMatch(/^Succeeded in \S+; RTO met/m);
      expect(last).toMatch(/^phase Succeeded {3}elapsed \S+$/m);
      // In place: however many frames were drawn, the screen holds one header and one phase line.
      expect(lines(last).filter((l) => l.startsWith('RollbackPlan '))).toHaveLength(1);
      expect(lines(last).filter((l) => /^phase \w+ {3}elapsed/.test(l))).toHaveLength(1);
      // While it ran: two screens of the same size whose elapsed time differs (the line was rewritten).
      const running = screens
        .filter((s) => /^phase Running {3}elapsed/m.test(s))
        .map((s) => ({ size: lines(s).length, elapsed: /elapsed (\S+)/.exec(s)![1], s }));
      const pair = running.find((a, i) =>
        running.slice(i + 1).some((b) => b.size === a.size && b.elapsed !== a.elapsed),
      );
      expect(pair, `screens while running:\n${running.map((r) => r.s).join('\n---\n')}`).toBeDefined();
      for (const r of running) expect(lines(r.s).filter((l) => l.includes('elapsed'))).toHaveLength(1);
      // A step line changed in place too: PostValidation was seen Running, then Succeeded.
      expect(running.some((r) => /^PostValidation\s+Running/m.test(r.s))).toBe(true);
      expect(last).toMatch(/^PostValidation\s+Succeeded/m);
      expect(await imageOf(ns, 'tty')).toBe('nginx:1.25');
    });
  });

  describe('approve and veto with the shipped approvals policy', () => {
    const shipped = new ShippedApprovals();
    let leadKc = '';
    let patcherKc = '';
    const lead = () => `system:serviceaccount:${ns}:lead`;
    const mediumPlan = async (name: string, deployment: string) => {
      await applyPlan(ns, name, {
        scope: 'app',
        severity: 'medium',
        targets: { deployments: [{ name: deployment }] },
      });
      return waitPlanPhase(ns, name, ['AwaitingApproval']);
    };

    beforeAll(async () => {
      await shipped.install('cli-plans-test');
      await Promise.all([
        deploymentWithHistory(ns, 'approved', ['nginx:1.25', 'nginx:1.26']),
        deploymentWithHistory(ns, 'vetoed', ['nginx:1.25', 'nginx:1.26']),
      ]);
      for (const sa of ['lead', 'patcher']) await kubectl('-n', ns, 'create', 'serviceaccount', sa);
      // Both may read and patch plans; only the lead holds the verbs (nxt-rollback-team-lead).
      await kubectl(
        '-n',
        ns,
        'create',
        'role',
        'plan-patcher',
        '--verb=get,list,watch,patch',
        '--resource=rollbackplans.rollback.nxtnewday.io',
      );
      await kubectl(
        '-n',
        ns,
        'create',
        'rolebinding',
        'plan-patcher',
        '--role=plan-patcher',
        `--serviceaccount=${ns}:patcher`,
      );
      await kubectl(
        '-n',
        ns,
        'create',
        'rolebinding',
        'lead',
        '--clusterrole=nxt-rollback-team-lead',
        `--serviceaccount=${ns}:lead`,
      );
      leadKc = await operatorKubeconfig({ namespace: ns, serviceAccount: 'lead' });
      patcherKc = await operatorKubeconfig({ namespace: ns, serviceAccount: 'patcher' });
      await mediumPlan('probe', 'web');
      await shipped.waitEnforced(() =>
        kubectlWith(
          patcherKc,
          '-n',
          ns,
          'annotate',
          'rbp',
          'probe',
          `${Annotation.ApprovedBy}=x`,
          '--dry-run=server',
        ),
      );
      await eventually(
        'RBAC to let the lead read plans',
        async () => (await cli(['status', 'probe'], { kubeconfig: leadKc })).code === 0,
      );
    });
    afterAll(async () => {
      // Later files may write approved-by as the admin with any name. (The patcher's Role is this file's:
      // the lead's ClusterRole goes with the policy.)
      await shipped.remove(
        patcherKc
          ? () =>
              kubectlWith(
                patcherKc,
                '-n',
                ns,
                'annotate',
                'rbp',
                'probe',
                `${Annotation.ApprovedBy}=someone-else`,
                '--dry-run=server',
              )
          : undefined,
      );
    });

    it('a user without the verb is refused by the policy (exit 4), and nothing changes', async () => {
      const r = await cli(['approve', 'probe'], { kubeconfig: patcherKc });
      record('approve without the verb', r);
      expect(r.code, show(r)).toBe(4);
      expect(r.stderr).toContain("ValidatingAdmissionPolicy 'nxt-rollback-approvals'");
      expect(r.stderr).toContain(`may not approve RollbackPlans of severity medium in namespace ${ns}`);
      const v = await cli(['veto', 'probe'], { kubeconfig: patcherKc });
      expect(v.code, show(v)).toBe(4);
      expect(v.stderr).toContain("needs the verb 'veto' on severities.rollback.nxtnewday.io/medium");
      expect((await getPlan(ns, 'probe')).metadata.annotations ?? {}).not.toHaveProperty(
        Annotation.ApprovedBy,
      );
    });

    it('an approved medium plan runs: approve --wait as the team lead', async () => {
      await mediumPlan('needs-ok', 'approved');
      const r = await cli(['approve', 'needs-ok', '--reason', 'checked the dashboards', '--wait'], {
        kubeconfig: leadKc,
      });
      record('approve --wait', r);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toContain(
        `approved RollbackPlan ${ns}/needs-ok (severity medium) as ${lead()}: checked the dashboards`,
      );
      expect(r.stdout).toMatch(/^phase: (Running|Succeeded)$/m);
      const plan = await waitPlanPhase(ns, 'needs-ok', ['Succeeded', 'Failed']);
      expect(plan.status.phase).toBe('Succeeded');
      expect(plan.status.approval).toMatchObject({ approvedBy: lead(), reason: 'checked the dashboards' });
      expect(plan.metadata.annotations).toMatchObject({
        [Annotation.ApprovedBy]: lead(),
        [Annotation.ApprovalReason]: 'checked the dashboards',
      });
      expect(await imageOf(ns, 'approved')).toBe('nginx:1.25');
      const again = await cli(['approve', 'needs-ok'], { kubeconfig: leadKc });
      record('approve a finished plan', again);
      expect(again.code, show(again)).toBe(1);
      expect(again.stderr).toContain('is Succeeded: an approval changes nothing any more');
    });

    it('a vetoed medium plan ends Vetoed and changes nothing (-o json)', async () => {
      await mediumPlan('not-now', 'vetoed');
      const r = await cli(['-o', 'json', 'veto', 'not-now', '--reason', 'not our release', '--wait'], {
        kubeconfig: leadKc,
      });
      record('veto -o json', r);
      expect(r.code, show(r)).toBe(0);
      expect(parseJson(r)).toEqual({
        name: 'not-now',
        namespace: ns,
        action: 'veto',
        user: lead(),
        reason: 'not our release',
        severity: 'medium',
        phase: 'Vetoed',
      });
      const plan = await getPlan(ns, 'not-now');
      expect(plan.status.veto).toMatchObject({ vetoedBy: lead(), reason: 'not our release' });
      expect(await imageOf(ns, 'vetoed')).toBe('nginx:1.26');
      const h = parseJson(await cli(['-o', 'json', 'history']));
      expect(h.find((e: any) => e.name === 'not-now')).toMatchObject({
        result: 'Vetoed',
        severity: 'medium',
      });
    });
  });
});
