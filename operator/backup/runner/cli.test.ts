import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ownerAccessOf, runnerMain } from './cli.js';
import { RunnerResultSchema, type RunnerResult } from './result.js';
import { fakeManifest } from '../../../test/support/runner-fixtures.js';

// runnerMain paths that need neither PostgreSQL nor its tools; the rest is in
// test/integration/backup-runner.test.ts.

const root = mkdtempSync(join(tmpdir(), 'runner-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const terminationLog = join(root, `term-${n++}`);
  const events: string[] = [];
  const code = await runnerMain(
    argv,
    { TERMINATION_LOG_PATH: terminationLog, ...env },
    {
      writeLog: (l) => events.push((JSON.parse(l) as { event: string }).event),
    },
  );
  const result = RunnerResultSchema.parse(JSON.parse(readFileSync(terminationLog, 'utf8'))) as RunnerResult;
  return { code, result, events, terminationLog };
}

function backupIn(dir: string, id: string, finishedAt: string, verified = true, dump = 'PGDMP-' + id) {
  writeFileSync(join(dir, `${id}.dump`), dump);
  const m = fakeManifest(id, finishedAt, {
    verified,
    bytes: Buffer.byteLength(dump),
    sha256: createHash('sha256').update(dump).digest('hex'),
  });
  writeFileSync(join(dir, `${id}.manifest.json`), JSON.stringify(m));
}

const freshDir = () => {
  const dir = join(root, `storage-${n++}`);
  mkdirSync(dir);
  return dir;
};

describe('runnerMain', () => {
  it('writes the result to TERMINATION_LOG_PATH when --termination-log is absent', async () => {
    const r = await run(['verify', '--storage-dir', freshDir(), '--id', 'nope']);
    expect(r.code).toBe(1);
    expect(r.result).toMatchObject({ operation: 'verify', id: 'nope', reason: 'BackupNotFound' });
  });

  it('writes a usage error to TERMINATION_LOG_PATH too', async () => {
    const r = await run(['backup', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.result).toMatchObject({ operation: 'backup', reason: 'InvalidArguments' });
  });

  it('prefers --termination-log over TERMINATION_LOG_PATH', async () => {
    const flag = join(root, 'flag-term');
    const env = join(root, 'env-term');
    await runnerMain(
      ['backup', '--bogus', '--termination-log', flag],
      { TERMINATION_LOG_PATH: env },
      {
        writeLog: () => {},
      },
    );
    expect(existsSync(flag)).toBe(true);
    expect(existsSync(env)).toBe(false);
  });

  it('rejects backup --id latest as a usage error before touching storage or database', async () => {
    const r = await run(['backup', '--storage-dir', '/does/not/exist', '--id', 'latest', '--keep-last', '2']);
    expect(r.code).toBe(2);
    expect(r.result).toMatchObject({ operation: 'backup', success: false, reason: 'InvalidArguments' });
    expect(r.result.message).toMatch(/"latest" is reserved/);
  });

  it.each(['verify', 'test-restore'])(
    'fails %s --id latest on an empty storage with BackupNotFound',
    async (cmd) => {
      const r = await run([cmd, '--storage-dir', freshDir(), '--id', 'latest']);
      expect(r.code).toBe(1);
      expect(r.result).toMatchObject({ operation: cmd, success: false, reason: 'BackupNotFound' });
      expect(r.result.message).toMatch(/--id latest: no verified backup in filesystem:/);
    },
  );

  it('reports the resolved id, never "latest"', async () => {
    const dir = freshDir();
    backupIn(dir, 'b-2026-03-01', '2026-03-01T02:00:00Z');
    backupIn(dir, 'b-2026-03-02', '2026-03-02T02:00:00Z');
    backupIn(dir, 'b-2026-03-03', '2026-03-03T02:00:00Z', false);
    // Damage the one latest resolves to, so verify fails on its checksum before it needs pg_restore.
    writeFileSync(join(dir, 'b-2026-03-02.dump'), 'damaged');
    const r = await run(['verify', '--storage-dir', dir, '--id', 'latest']);
    expect(r.result).toMatchObject({ operation: 'verify', id: 'b-2026-03-02', reason: 'ChecksumMismatch' });
    expect(r.events).toContain('runner.latest-resolved');
  });
});

describe('ownerAccessOf', () => {
  it('classes every command: backups and prunes write the prefix, the rest only read; an unknown one throws', () => {
    expect(ownerAccessOf('backup')).toBe('write');
    expect(ownerAccessOf('prune')).toBe('write');
    for (const c of ['verify', 'restore', 'test-restore', 'probe-storage'] as const)
      expect(ownerAccessOf(c)).toBe('read');
    // Not silently a read: a new command must be classed.
    expect(() => ownerAccessOf('compact' as never)).toThrow(/no owner access/);
  });
});
