import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerMain } from '../../operator/backup/runner/cli.js';
import { RunnerResultSchema, type RunnerResult } from '../../operator/backup/runner/result.js';
import { createBucket, listObjects, s3RunnerEnv, useS3Server } from '../support/s3.js';
import { createTestDatabase, tableChecksum, withClient } from '../support/postgres.js';

// Two BackupSchedules with the same name in different namespaces pointed at one bucket + prefix (one GitOps
// overlay applied twice, a DR cluster): the runner of the second is refused (StorageOwnedByOther) by every
// command, so it never prunes, selects, overwrites or restores the first one's backups. Real SeaweedFS,
// real PostgreSQL, the runner's subcommands as a Job pod runs them (argv + env, termination-log file).

const s3 = useS3Server();
const root = mkdtempSync(join(tmpdir(), 'nxt-s3-own-'));
let runs = 0;
let bucket = '';

function env(database: string, namespace: string, uid: string): NodeJS.ProcessEnv {
  return s3RunnerEnv(s3(), database, {
    extra: {
      NXT_NAMESPACE: namespace,
      NXT_SCHEDULE_NAME: 'orders',
      NXT_SCHEDULE_UID: uid,
      NXT_BACKUP_PURPOSE: 'scheduled',
    },
  });
}

async function runner(
  argv: string[],
  e: NodeJS.ProcessEnv,
): Promise<{ code: number; result: RunnerResult; output: string }> {
  const terminationLog = join(root, `termination-${runs++}`);
  const lines: string[] = [];
  const code = await runnerMain([...argv, '--termination-log', terminationLog], e, {
    writeLog: (l) => lines.push(l),
  });
  const message = readFileSync(terminationLog, 'utf8');
  const parsed = RunnerResultSchema.safeParse(JSON.parse(message));
  expect(parsed.success, `the termination message parses: ${message}`).toBe(true);
  return { code, result: parsed.data!, output: [message, ...lines].join('\n') };
}

beforeAll(async () => {
  bucket = await createBucket(s3());
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('one S3 prefix belongs to one schedule (namespace + name)', () => {
  it('refuses a same-named schedule of another namespace on every command; the owner keeps its backups', async () => {
    const dbA = await createTestDatabase('s3owna');
    const dbB = await createTestDatabase('s3ownb');
    for (const db of [dbA, dbB]) {
      await withClient(db.url, async (c) => {
        await c.query('create table orders (id int primary key, note text)');
        await c.query("insert into orders select g, 'order ' || g from generate_series(1, 200) g");
      });
    }
    const url = `s3://${bucket}/shared/orders`;
    const a = env(dbA.name, 'team-a', 'uid-a');
    const b = env(dbB.name, 'team-b', 'uid-b');
    for (const id of ['orders-backup-100', 'orders-backup-200']) {
      const r = await runner(['backup', '--storage-url', url, '--id', id], a);
      expect(r.result, r.output).toMatchObject({ success: true });
    }
    const keysOfA = (await listObjects(s3(), bucket, 'shared/orders/')).map((o) => o.key).sort();
    expect(keysOfA).toContain('shared/orders/orders-backup-100.manifest.json');

    const refused = (r: { result: RunnerResult; output: string }) => {
      expect(r.result, r.output).toMatchObject({ success: false, reason: 'StorageOwnedByOther' });
      expect(r.result.message).toContain('team-a/orders');
    };
    // The second schedule's backup (even at a minute the first one used), prune, selection and restores.
    refused(
      await runner(['backup', '--storage-url', url, '--id', 'orders-backup-300', '--keep-last', '1'], b),
    );
    refused(await runner(['backup', '--storage-url', url, '--id', 'orders-backup-200'], b));
    refused(await runner(['prune', '--storage-url', url, '--keep-last', '1'], b));
    refused(await runner(['verify', '--storage-url', url, '--id', 'latest'], b));
    refused(await runner(['test-restore', '--storage-url', url, '--id', 'latest'], b));
    const beforeB = await tableChecksum(dbB.url, 'orders');
    refused(
      await runner(['restore', '--storage-url', url, '--id', 'orders-backup-200', '--mode', 'inPlace'], b),
    );
    expect(await tableChecksum(dbB.url, 'orders'), 'the other namespace database is untouched').toEqual(
      beforeB,
    );
    expect((await listObjects(s3(), bucket, 'shared/orders/')).map((o) => o.key).sort()).toEqual(keysOfA);

    // The owner, re-created (new UID, same namespace and name: GitOps), still uses and prunes its prefix.
    const again = env(dbA.name, 'team-a', 'uid-a2');
    const v = await runner(['verify', '--storage-url', url, '--id', 'latest'], again);
    expect(v.result, v.output).toMatchObject({ success: true, id: 'orders-backup-200' });
    const p = await runner(['prune', '--storage-url', url, '--keep-last', '1'], again);
    expect(p.result, p.output).toMatchObject({ success: true, deleted: ['orders-backup-100'] });
  });
});
