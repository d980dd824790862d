import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  applySchedule,
  createDbSecret,
  dbSecretData,
  deletePvs,
  getSchedule,
  patchSchedule,
  scheduleJobs,
  waitScheduleCondition,
} from '../support/backups.js';
import { parseJson, REPO_ROOT, runCli } from '../support/cli.js';
import {
  applyYaml,
  expectProjectContainer,
  createHostPathClaim,
  createRealNodeNamespace,
  helm,
  installToLeader,
  killContainer,
  leaderPod,
  leaseHolder,
  operatorPodLogs,
  printOperatorLogsOnFailure,
  projectImageParts,
  realNodePoliciesYaml,
  runningOperatorPods,
} from '../support/e2e.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  kubectl,
  testClients,
} from '../support/kube.js';
import { applyPlan, condition, waitPlanPhase } from '../support/plans.js';
import { createTestDatabase, withClient } from '../support/postgres.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

// Issue 14: the operator as a user installs it. Its image is built from the Dockerfile for this run
// (test/e2e/global-setup.ts), installed by its Helm chart with the chart's ServiceAccount and RBAC only,
// leader election on and two replicas, on a real node (kubelet + containerd). Then the demo's story through
// it: an emergency app rollback with the CLI, a BackupSchedule whose CronJob-made Job runs the runner in the
// image against the harness PostgreSQL, a database-scope plan restoring that backup while the leader pod is
// deleted mid-restore. Only networking is adapted by the test (test/support/e2e.ts: hostNetwork through a
// test-owned MutatingAdmissionPolicy, because this machine only allows loopback traffic).
describe.skipIf(inject('e2eSkipReason'))(
  'e2e: the Helm chart installs the operator image on a real node',
  () => {
    const release = 'nxt';
    const opNs = 'nxt-e2e-helm';
    const sa = 'nxt-nxt-rollback-operator';
    let appNs = '';
    let dbNs = '';
    let db: { name: string; url: string };
    const pvs: string[] = [];
    const dirs: string[] = [];
    let backupId = '';
    let claimDir = '';
    const orders = async () =>
      withClient(db.url, async (c) => Number((await c.query('select count(*) as n from orders')).rows[0].n));

    beforeAll(async () => {
      await applyYaml(realNodePoliciesYaml());
      await createRealNodeNamespace('', opNs);
      const [repository, tag] = projectImageParts();
      await installToLeader(
        opNs,
        'helm install',
        () =>
          helm(
            'install',
            release,
            join(REPO_ROOT, 'charts', 'nxt-rollback-operator'),
            '-n',
            opNs,
            '--set',
            `image.repository=${repository}`,
            '--set',
            `image.tag=${tag}`,
            '--set',
            'image.pullPolicy=Never',
            '--set',
            'replicaCount=2',
            '--set',
            'leaderElection.enabled=true',
            '--wait',
            '--timeout',
            '5m',
          ),
        180_000,
      );
    });
    printOperatorLogsOnFailure(opNs);
    afterAll(async () => {
      await helm('uninstall', release, '-n', opNs, '--wait', '--timeout', '2m').catch((e) =>
        console.log(String(e)),
      );
      for (const ns of [appNs, dbNs, opNs]) if (ns) await deleteTestNamespace(ns);
      await deletePvs(pvs);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it("runs in the project image as the chart's ServiceAccount, two replicas, one leader", async () => {
      const pods = await runningOperatorPods(opNs);
      expect(pods).toHaveLength(2);
      for (const p of pods) {
        expect(p.spec?.nodeName).toBe(inject('realNode').nodeName);
        expect(p.spec?.serviceAccountName).toBe(sa);
        expect(p.spec?.containers[0]?.image).toBe(inject('e2eImage'));
        const info = await expectProjectContainer(p);
        expect(info.Spec.process.args).toEqual([
          '/usr/bin/tini',
          '--',
          'node',
          'dist/operator/main.js',
          'manager',
        ]);
      }
      // Only the chart's bindings name the ServiceAccount: nothing else grants it anything.
      const subjects = JSON.parse(
        await kubectl('get', 'clusterrolebindings,rolebindings', '-A', '-o', 'json'),
      );
      const granted = subjects.items
        .filter((b: any) =>
          (b.subjects ?? []).some(
            (s: any) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === opNs,
          ),
        )
        .map((b: any) => b.metadata.labels?.['app.kubernetes.io/managed-by']);
      expect(granted.length).toBeGreaterThan(0);
      expect(new Set(granted)).toEqual(new Set(['Helm']));
      expect(pods.map((p) => p.metadata!.name)).toContain(await leaderPod(opNs));
    });

    it('emergency app rollback with the CLI: the installed operator rolls the Deployment back', async () => {
      appNs = await createTestNamespace('e2e-app');
      // The app runs on the kwok nodes (its images are not on the real node); only the operator is real.
      await deploymentWithHistory(appNs, 'checkout', ['nginx:1.25', 'nginx:1.26', 'nginx:1.27']);
      const r = await runCli(
        [
          '-n',
          appNs,
          'emergency',
          '--scope',
          'app',
          'checkout',
          '--reason',
          '5xx after the 1.27 release',
          '--name',
          'checkout-emergency',
          '--timeout',
          '3m',
          '-o',
          'json',
        ],
        { timeoutMs: 240_000 },
      );
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(parseJson(r)).toMatchObject({ name: 'checkout-emergency', phase: 'Succeeded' });
      expect(await imageOf(appNs, 'checkout')).toBe('nginx:1.26');
    });

    it("a BackupSchedule's CronJob-made Job runs the image's pg_dump as 65532 with a read-only root", async () => {
      dbNs = await createRealNodeNamespace('e2e-db');
      db = await createTestDatabase('e2e');
      await withClient(db.url, async (c) => {
        await c.query('create table orders (id int primary key, total int not null)');
        await c.query('insert into orders select g, g from generate_series(1, 500) g');
      });
      await createDbSecret(dbNs, 'db', dbSecretData(db.name));
      const claim = await createHostPathClaim(dbNs, 'backups');
      pvs.push(claim.pv);
      dirs.push(claim.workDir);
      claimDir = claim.dir;
      // Every minute, so the CronJob controller itself makes the first Job; slowed down once it has.
      await applySchedule(dbNs, 'shop-db', {
        schedule: '* * * * *',
        database: { secretRef: { name: 'db' } },
        storage: { persistentVolumeClaim: { claimName: 'backups' } },
      });
      const job = await eventually(
        'the first CronJob-made backup Job',
        async () =>
          (await scheduleJobs(dbNs, 'shop-db')).find((j) =>
            j.metadata?.ownerReferences?.some((o) => o.kind === 'CronJob' && o.name === 'shop-db-backup'),
          ),
        150_000,
        1000,
      );
      await patchSchedule(dbNs, 'shop-db', { spec: { schedule: '0 3 * * *' } });
      backupId = job.metadata!.name!;
      await waitScheduleCondition(
        dbNs,
        'shop-db',
        'LastBackupSucceeded',
        'True',
        'BackupVerified',
        240_000,
        (s) => (s.status?.backups ?? []).some((b: any) => b.id === backupId),
      );

      const { core } = testClients();
      // The operator may record the backup (from the container's termination message) before the kubelet
      // has reported the pod's phase: wait for Succeeded (a run saw it still Running).
      const pod = await eventually(
        `the backup pod of ${backupId} Succeeded`,
        async () =>
          (
            await core.listNamespacedPod({ namespace: dbNs, labelSelector: `job-name=${backupId}` })
          ).items.find((p) => p.status?.phase === 'Succeeded'),
        60_000,
        500,
      );
      expect(pod.spec?.nodeName).toBe(inject('realNode').nodeName);
      const info = await expectProjectContainer(pod);
      expect(info.Spec.process.user.gid).toBe(65532);
      expect(info.Spec.process.args).toContain('backup');
      expect(info.Spec.process.capabilities?.effective ?? []).toEqual([]);
      // Written by the runner in the pod: owned by its uid, and dumped by the image's PostgreSQL 15 pg_dump.
      const dump = join(claimDir, `${backupId}.dump`);
      expect(statSync(dump).uid).toBe(65532);
      const manifest = JSON.parse(readFileSync(join(claimDir, `${backupId}.manifest.json`), 'utf8'));
      expect(manifest.pgDumpVersion).toMatch(/^pg_dump \(PostgreSQL\) 15\.\d+ \(Debian /);
      expect(manifest.tables['public.orders']).toBe(500);
      const schedule = await getSchedule(dbNs, 'shop-db');
      expect(condition(schedule, 'LastBackupSucceeded')?.status).toBe('True');
    });

    it("a database-scope plan restores it with the image's pg_restore, and finishes exactly once when the leader crashes mid-restore", async () => {
      expect(backupId, 'the backup test ran').not.toBe('');
      await withClient(db.url, (c) => c.query('delete from orders where id > 100'));
      expect(await orders()).toBe(100);
      const planLabel = 'rollback.nxtnewday.io/plan=restore-orders';
      // Every Job the plan ever has, from before it exists: a restore Job made twice and deleted in between
      // would not show in a list at the end.
      const seen = new Map<string, string>(); // uid -> name
      let watchError: unknown;
      let watchStopped = false;
      const { kc } = testClients();
      const { Watch } = await import('@kubernetes/client-node');
      const watch = await new Watch(kc).watch(
        `/apis/batch/v1/namespaces/${dbNs}/jobs`,
        { labelSelector: planLabel },
        (type, obj: any) => {
          if (type !== 'BOOKMARK' && obj?.metadata?.uid) seen.set(obj.metadata.uid, obj.metadata.name);
        },
        (err) => {
          if (!watchStopped) watchError = err ?? new Error("the watch of the plan's Jobs ended");
        },
      );
      const logsBefore = new Map<string, string>();
      let restoreUid = '';
      let killedPod = '';
      let killedIdentity = '';
      // An open transaction holding a lock on orders: pg_restore --clean waits on it, so the plan is
      // certainly mid-restore when the leader goes.
      const { default: pgModule } = await import('pg');
      const holder: pg.Client = new pgModule.Client({ connectionString: db.url });
      await holder.connect();
      const { core, batch } = testClients();
      try {
        await holder.query('begin');
        await holder.query('lock table orders in access share mode');
        await applyPlan(dbNs, 'restore-orders', {
          scope: 'database',
          reason: 'orders deleted by the 1.27 migration',
          targets: {
            database: {
              backupScheduleRef: { name: 'shop-db' },
              backup: { id: backupId },
              safetyBackup: false,
            },
          },
        });
        await eventually(
          'the restore to wait for the lock on orders',
          async () => {
            const r = await holder.query(
              `select count(*)::int as n from pg_locks l join pg_class k on k.oid = l.relation
              where not l.granted and k.relname = 'orders'`,
            );
            return r.rows[0].n > 0;
          },
          240_000,
          500,
        );
        // The restore Job and its pod, running (waiting on the lock): the image's pg_restore, as 65532.
        const restoreJobs = (
          await batch.listNamespacedJob({ namespace: dbNs, labelSelector: planLabel })
        ).items.filter((j) => j.metadata!.name!.endsWith('-restore'));
        expect(restoreJobs).toHaveLength(1);
        restoreUid = restoreJobs[0]!.metadata!.uid!;
        const restorePods = await core.listNamespacedPod({
          namespace: dbNs,
          labelSelector: `job-name=${restoreJobs[0]!.metadata!.name!}`,
        });
        expect(restorePods.items).toHaveLength(1);
        const rp = restorePods.items[0]!;
        expect(rp.status?.phase).toBe('Running');
        expect(rp.spec?.nodeName).toBe(inject('realNode').nodeName);
        const rinfo = await expectProjectContainer(rp);
        expect(rinfo.Spec.process.user.gid).toBe(65532);
        expect(rinfo.Spec.process.args).toContain('restore');
        expect(rinfo.Spec.process.capabilities?.effective ?? []).toEqual([]);
        expect(rinfo.Spec.process.capabilities?.bounding ?? []).toEqual([]);

        // Every operator pod's logs before the crash (the killed process's own are read after it, --previous).
        for (const [k, v] of await operatorPodLogs(opNs)) logsBefore.set(k, v);
        killedPod = await leaderPod(opNs);
        killedIdentity = await leaseHolder(opNs);
        expect(killedIdentity.startsWith(`${killedPod}_`)).toBe(true);
        const leader = await core.readNamespacedPod({ name: killedPod, namespace: opNs });
        const restartsBefore = leader.status!.containerStatuses![0]!.restartCount;
        await killContainer(leader.status!.containerStatuses![0]!.containerID!);
        // A crash, not a shutdown: the lease is never released (a graceful stop empties holderIdentity
        // after its drain; here it stays the killed process's until a new process takes the expired lease),
        // the container died of SIGKILL (137) and was restarted, and its log has no shutdown line (below).
        const holders = new Set<string>();
        const crashed = await eventually(
          'the killed leader container to be restarted',
          async () => {
            holders.add(await leaseHolder(opNs));
            const p = await core.readNamespacedPod({ name: killedPod, namespace: opNs });
            const cs = p.status?.containerStatuses?.[0];
            return cs && cs.restartCount > restartsBefore ? cs : undefined;
          },
          120_000,
          500,
        );
        expect(crashed.lastState?.terminated?.exitCode).toBe(137);
        expect(crashed.lastState?.terminated?.reason).toBe('Error');
        expect(holders.has(killedIdentity), 'the lease still names the killed process').toBe(true);
        expect(holders.has(''), 'the lease was never released').toBe(false);
        const next = await eventually(
          'a new leader process',
          async () => {
            const h = await leaseHolder(opNs);
            return h && h !== killedIdentity ? h : undefined;
          },
          120_000,
          500,
        );
        expect(next).not.toBe(killedIdentity);
      } finally {
        await holder.query('commit').catch(() => {});
        await holder.end().catch(() => {});
      }
      const plan = await waitPlanPhase(dbNs, 'restore-orders', ['Succeeded', 'Failed'], 300_000);
      expect(plan.status.phase, JSON.stringify(plan.status.conditions)).toBe('Succeeded');
      expect(condition(plan, 'DatabaseRestored')?.status).toBe('True');
      expect(await orders(), 'the rows are back').toBe(500);
      // Exactly once: the plan names the Job that was running before the crash, and no other restore Job
      // ever existed (the watch saw every Job of the plan from before it was created).
      expect(plan.status.database?.restoreJobUID).toBe(restoreUid);
      const jobs = (await batch.listNamespacedJob({ namespace: dbNs, labelSelector: planLabel })).items;
      watchStopped = true; // abort() ends the watch with an AbortError: ours, not a failure
      watch.abort();
      expect(watchError, "the watch of the plan's Jobs ran to the end").toBeUndefined();
      for (const j of jobs) seen.set(j.metadata!.uid!, j.metadata!.name!);
      const restoreUids = [...seen].filter(([, name]) => name.endsWith('-restore')).map(([uid]) => uid);
      expect(restoreUids, 'one restore Job ever').toEqual([restoreUid]);
      const names = [...seen.values()].sort();
      expect(names, 'one Job per step, none made twice').toEqual([...new Set(names)]);
      // The operator records the result from the runner's termination message, so the Job controller may
      // not have counted the pod yet: wait for it, then check that nothing failed.
      expect(
        jobs.find((j) => j.metadata!.uid === restoreUid),
        'the restore Job is still there',
      ).toBeDefined();
      const restore = await eventually(
        'the Job controller to count the restore pod as succeeded',
        async () => {
          const j = (await batch.listNamespacedJob({ namespace: dbNs, labelSelector: planLabel })).items.find(
            (x) => x.metadata!.uid === restoreUid,
          );
          return j?.status?.succeeded === 1 ? j : undefined;
        },
        60_000,
        500,
      );
      expect(restore.status?.failed ?? 0).toBe(0);

      // Logs of every operator pod from before the crash and now (the killed process's via --previous): no
      // graceful shutdown in the killed one, and no RBAC refusal anywhere. A kubectl logs failure fails here.
      const logsAfter = await operatorPodLogs(opNs);
      const killedLog = logsAfter.get(`${killedPod} (previous)`);
      expect(killedLog, "the killed container's log").toBeDefined();
      expect(killedLog).toContain(killedIdentity);
      expect(killedLog).not.toMatch(/received signal, shutting down|stopping manager|manager stopped/);
      const all = [...logsBefore, ...logsAfter];
      expect(all.length).toBeGreaterThanOrEqual(3);
      for (const [pod, text] of all)
        expect(text, `${pod}: the chart RBAC lacks nothing the operator uses`).not.toMatch(/forbidden/i);
    });
  },
);
