import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Job } from '@kubernetes/client-node';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
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
  containerInfo,
  expectPodTemplateRestricted,
  expectProjectImage,
  expectRestrictedContainer,
  createHostPathClaim,
  createRealNodeNamespace,
  helm,
  killContainer,
  leaderPod,
  leaseHolder,
  operatorLogs,
  operatorPodLogs,
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
import { resumableWatch } from '../support/watch.js';
import { deploymentWithHistory, imageOf } from '../support/workloads.js';

// Issue 14: the operator as a user installs it. Its image is built from the Dockerfile for this run
// (test/e2e/global-setup.ts), installed by its Helm chart with the chart's ServiceAccount and RBAC only,
// leader election on and two replicas, on a real node (kubelet + containerd). Then the demo's story through
// it: an emergency app rollback with the CLI, a BackupSchedule whose CronJob-made Job runs the runner in the
// image against the harness PostgreSQL, a database-scope plan restoring that backup while the leader's
// container is SIGKILLed through containerd mid-restore (a crash, not a pod deletion). The chart installs its
// own CRDs (the ones the global setup applied are deleted first). Only networking is adapted by the test
// (test/support/e2e.ts: hostNetwork through a test-owned MutatingAdmissionPolicy, because this machine only
// allows loopback traffic); the pod templates are also dry-run, unmutated, in a Pod Security `restricted`
// namespace.
describe.skipIf(inject('e2eSkipReason'))(
  'e2e: the Helm chart installs the operator image on a real node',
  () => {
    const release = 'nxt';
    const opNs = 'nxt-e2e-helm';
    const sa = 'nxt-nxt-rollback-operator';
    const chartDir = join(REPO_ROOT, 'charts', 'nxt-rollback-operator');
    const chartCrds = readdirSync(join(chartDir, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => parse(readFileSync(join(chartDir, 'crds', f), 'utf8')));
    const crdUidsBefore = new Map<string, string>();
    let appNs = '';
    let dbNs = '';
    let restrictedNs = '';
    let db: { name: string; url: string };
    const pvs: string[] = [];
    const dirs: string[] = [];
    let backupId = '';
    let claimDir = '';
    /** Jobs of the schedule's CronJob: there must only ever be the one the backup test waited for. */
    const cronJobMade = async () =>
      (await scheduleJobs(dbNs, 'shop-db')).filter((j) =>
        j.metadata?.ownerReferences?.some((o) => o.kind === 'CronJob' && o.name === 'shop-db-backup'),
      );
    const orders = async () =>
      withClient(db.url, async (c) => Number((await c.query('select count(*) as n from orders')).rows[0].n));

    beforeAll(async () => {
      await applyYaml(realNodePoliciesYaml());
      // The chart's own CRDs, not the ones the global setup applied from crds/: helm installs a chart's crds/
      // only when they do not exist yet, so those are deleted first (files run one at a time; the kustomize
      // test applies the base's CRDs itself).
      for (const crd of chartCrds) {
        const name = crd.metadata.name as string;
        const live = await kubectl('get', 'crd', name, '-o', 'jsonpath={.metadata.uid}').catch(() => '');
        if (live) crdUidsBefore.set(name, live);
      }
      await kubectl(
        'delete',
        'crd',
        ...chartCrds.map((c) => c.metadata.name as string),
        '--ignore-not-found',
        '--wait=true',
        '--timeout=180s',
      );
      await createRealNodeNamespace('', opNs);
      restrictedNs = await createTestNamespace('e2e-restricted');
      const t0 = Date.now();
      const [repository, tag] = inject('e2eImage').split(/:(?=[^:]+$)/) as [string, string];
      await helm(
        'install',
        release,
        chartDir,
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
      );
      await eventually(
        'two running operator pods',
        async () => (await runningOperatorPods(opNs)).length === 2,
        180_000,
        1000,
      );
      await leaderPod(opNs);
      console.log(`[e2e] helm install to a leader: ${Date.now() - t0} ms`);
    });
    afterEach(async (ctx) => {
      if (ctx.task.result?.state === 'fail')
        console.log(`--- operator ---\n${(await operatorLogs(opNs).catch((e) => String(e))).slice(-8000)}`);
    });
    afterAll(async () => {
      await helm('uninstall', release, '-n', opNs, '--wait', '--timeout', '2m').catch((e) =>
        console.log(String(e)),
      );
      for (const ns of [appNs, dbNs, opNs, restrictedNs]) if (ns) await deleteTestNamespace(ns);
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
        const info = await containerInfo(p.status!.containerStatuses![0]!.containerID!);
        await expectProjectImage(p.status!.containerStatuses![0], info);
        expect(info.Spec.process.user.uid).toBe(65532);
        expect(info.Spec.root.readonly).toBe(true);
        expect(info.Spec.process.args).toEqual([
          '/usr/bin/tini',
          '--',
          'node',
          'dist/bundle/main.js',
          'manager',
        ]);
        await expectRestrictedContainer(info, `operator pod ${p.metadata!.name}`);
      }
      // The chart's Deployment as the chart wrote it (only its pods are changed, in the labelled namespace)
      // is admitted under Pod Security restricted.
      const { apps } = testClients();
      const deployment = await apps.readNamespacedDeployment({ name: sa, namespace: opNs });
      await expectPodTemplateRestricted(restrictedNs, deployment.spec!.template, 'the operator Deployment');
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

    it('the chart installed its own CRDs', async () => {
      expect(crdUidsBefore.size, 'the global setup had installed the CRDs').toBe(chartCrds.length);
      for (const crd of chartCrds) {
        const live = JSON.parse(
          await kubectl('get', 'crd', crd.metadata.name, '-o', 'json', '--show-managed-fields'),
        );
        expect(live.metadata.uid, `${crd.metadata.name} was made anew`).not.toBe(
          crdUidsBefore.get(crd.metadata.name),
        );
        expect(
          (live.metadata.managedFields ?? []).map((f: any) => String(f.manager).toLowerCase()),
          `${crd.metadata.name} was created by helm`,
        ).toContain('helm');
        expect(live.spec).toMatchObject(crd.spec);
        expect(
          live.status.conditions.find((c: any) => c.type === 'Established')?.status,
          `${crd.metadata.name} Established`,
        ).toBe('True');
      }
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
      // One instant a year (minute, hour, day and month of a moment a minute or two ahead, UTC), so the
      // CronJob controller itself makes exactly one Job. The controller runs a time after the CronJob's
      // creation (a late one too, within startingDeadlineSeconds) and never one before it: if the operator
      // made the CronJob after that minute (a loaded machine), no Job comes for it and another minute is set.
      const { batch } = testClients();
      const cronAt = (t: number) => {
        const d = new Date(t);
        return `${d.getUTCMinutes()} ${d.getUTCHours()} ${d.getUTCDate()} ${d.getUTCMonth() + 1} *`;
      };
      const nextMinute = () => Math.ceil((Date.now() + 60_000) / 60_000) * 60_000;
      let at = nextMinute();
      await applySchedule(dbNs, 'shop-db', {
        schedule: cronAt(at),
        timeZone: 'Etc/UTC',
        database: { secretRef: { name: 'db' } },
        storage: { persistentVolumeClaim: { claimName: 'backups' } },
      });
      for (let attempt = 1; ; attempt++) {
        const cronJob = await eventually(
          `the CronJob with schedule ${cronAt(at)}`,
          async () => {
            const c = await batch
              .readNamespacedCronJob({ name: 'shop-db-backup', namespace: dbNs })
              .catch(() => undefined);
            return c?.spec?.schedule === cronAt(at) ? c : undefined;
          },
          120_000,
          500,
        );
        if (new Date(cronJob.metadata!.creationTimestamp!).getTime() < at) break;
        expect(attempt, 'the operator made the CronJob in time once in three').toBeLessThan(3);
        at = nextMinute();
        await patchSchedule(dbNs, 'shop-db', { spec: { schedule: cronAt(at) } });
      }
      const job = await eventually(
        `the CronJob-made backup Job of ${new Date(at).toISOString()}`,
        async () => (await cronJobMade())[0],
        Math.max(0, at - Date.now()) + 150_000,
        1000,
      );
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
      const info = await containerInfo(pod.status!.containerStatuses![0]!.containerID!);
      await expectProjectImage(pod.status!.containerStatuses![0], info);
      expect(info.Spec.process.user.uid).toBe(65532);
      expect(info.Spec.process.user.gid).toBe(65532);
      expect(info.Spec.root.readonly).toBe(true);
      expect(info.Spec.process.args).toContain('backup');
      await expectRestrictedContainer(info, `backup pod ${pod.metadata!.name}`);
      await expectPodTemplateRestricted(restrictedNs, job.spec!.template, 'the backup Job');
      // Written by the runner in the pod: owned by its uid, and dumped by the image's PostgreSQL 15 pg_dump.
      const dump = join(claimDir, `${backupId}.dump`);
      expect(statSync(dump).uid).toBe(65532);
      const manifest = JSON.parse(readFileSync(join(claimDir, `${backupId}.manifest.json`), 'utf8'));
      expect(manifest.pgDumpVersion).toMatch(/^pg_dump \(PostgreSQL\) 15\.\d+ \(Debian /);
      expect(manifest.tables['public.orders']).toBe(500);
      const schedule = await getSchedule(dbNs, 'shop-db');
      expect(condition(schedule, 'LastBackupSucceeded')?.status).toBe('True');
      expect((await cronJobMade()).map((j) => j.metadata!.name)).toEqual([backupId]);
    });

    it("a database-scope plan restores it with the image's pg_restore, and finishes exactly once when the leader crashes mid-restore", async () => {
      expect(backupId, 'the backup test ran').not.toBe('');
      await withClient(db.url, (c) => c.query('delete from orders where id > 100'));
      expect(await orders()).toBe(100);
      const planLabel = 'rollback.nxtnewday.io/plan=restore-orders';
      // Every Job and every Pod in the namespace, from before the plan exists, whatever their name or labels:
      // a restore Job (or pod) made twice and deleted in between would not show in a list at the end. A Job
      // is a restore Job when its runner's first argument is `restore` (the runner's command).
      const jobsSeen = new Map<string, { name: string; restore: boolean }>(); // uid -> Job
      const podsSeen = new Map<string, { name: string; job: string }>(); // uid -> Pod and its Job's uid
      const noteJob = (j: any) => {
        if (!j?.metadata?.uid) return;
        const restore = (j.spec?.template?.spec?.containers ?? []).some(
          (c: any) => c.args?.[0] === 'restore',
        );
        jobsSeen.set(j.metadata.uid, { name: j.metadata.name, restore });
      };
      const notePod = (p: any) => {
        if (!p?.metadata?.uid) return;
        const owner = (p.metadata.ownerReferences ?? []).find((o: any) => o.kind === 'Job');
        podsSeen.set(p.metadata.uid, { name: p.metadata.name, job: owner?.uid ?? '' });
      };
      // list + watch from its resourceVersion, started again from the last one seen after a transient end (a
      // reset or a failed start under load): only 410 Gone (events lost) fails the check
      const { kc, batch: batchApi, core: coreApi } = testClients();
      const watches = [
        await resumableWatch(
          kc,
          `/apis/batch/v1/namespaces/${dbNs}/jobs`,
          () => batchApi.listNamespacedJob({ namespace: dbNs }),
          noteJob,
        ),
        await resumableWatch(
          kc,
          `/api/v1/namespaces/${dbNs}/pods`,
          () => coreApi.listNamespacedPod({ namespace: dbNs }),
          notePod,
        ),
      ];
      const logsBefore = new Map<string, string>();
      let restoreUid = '';
      let restoreJob: V1Job | undefined;
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
        const restoreJobs = (await batch.listNamespacedJob({ namespace: dbNs })).items.filter((j) =>
          j.spec?.template.spec?.containers.some((c) => c.args?.[0] === 'restore'),
        );
        expect(restoreJobs).toHaveLength(1);
        restoreJob = restoreJobs[0]!;
        restoreUid = restoreJob.metadata!.uid!;
        // Its pod as the kubelet reports it once running: phase Running and the container's ID (a loaded
        // machine can show the pod Pending, or Running before the container status has its ID).
        const rp = await eventually(
          'the restore pod Running with its container',
          async () => {
            const pods = (
              await core.listNamespacedPod({
                namespace: dbNs,
                labelSelector: `job-name=${restoreJob!.metadata!.name!}`,
              })
            ).items;
            expect(pods, 'one restore pod').toHaveLength(1);
            const cs = pods[0]!.status?.containerStatuses?.[0];
            return pods[0]!.status?.phase === 'Running' && cs?.state?.running && cs.containerID
              ? pods[0]!
              : undefined;
          },
          60_000,
          500,
        );
        expect(rp.spec?.nodeName).toBe(inject('realNode').nodeName);
        const rinfo = await containerInfo(rp.status!.containerStatuses![0]!.containerID!);
        await expectProjectImage(rp.status!.containerStatuses![0], rinfo);
        expect(rinfo.Spec.process.user.uid).toBe(65532);
        expect(rinfo.Spec.process.user.gid).toBe(65532);
        expect(rinfo.Spec.root.readonly).toBe(true);
        expect(rinfo.Spec.process.args).toContain('restore');
        await expectRestrictedContainer(rinfo, `restore pod ${rp.metadata!.name}`);

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
      // Exactly once: the plan names the Job that was running before the crash, no other restore Job ever
      // existed in the namespace, and that Job only ever had the one pod (the watches saw every Job and Pod
      // of the namespace from before the plan was created).
      expect(plan.status.database?.restoreJobUID).toBe(restoreUid);
      const jobs = (await batch.listNamespacedJob({ namespace: dbNs })).items;
      const pods = (await core.listNamespacedPod({ namespace: dbNs })).items;
      for (const w of watches) w.stop();
      expect(
        watches.flatMap((w) => w.errors),
        'the watches of Jobs and Pods saw every event',
      ).toEqual([]);
      for (const j of jobs) noteJob(j);
      for (const p of pods) notePod(p);
      const restoreUids = [...jobsSeen].filter(([, j]) => j.restore).map(([uid]) => uid);
      expect(restoreUids, 'one restore Job ever').toEqual([restoreUid]);
      const restorePods = [...podsSeen.values()].filter((p) => p.job === restoreUid).map((p) => p.name);
      expect(restorePods, 'one pod of the restore Job ever').toHaveLength(1);
      const names = [...jobsSeen.values()].map((j) => j.name).sort();
      expect(names, 'one Job per step, none made twice').toEqual([...new Set(names)]);
      expect((await cronJobMade()).map((j) => j.metadata!.name)).toEqual([backupId]);
      await expectPodTemplateRestricted(restrictedNs, restoreJob!.spec!.template, 'the restore Job');
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
