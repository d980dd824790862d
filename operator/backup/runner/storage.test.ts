import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidBackupIdError } from './backup-id.js';
import type { BackupManifest } from './manifest.js';
import type { BackupPin } from './pins.js';
import { BackupNotFoundError, FilesystemBackupStorage, ManifestInvalidError } from './storage.js';
import { fakeManifest } from '../../../test/support/runner-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'runner-storage-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshStorage = () => {
  const dir = mkdtempSync(join(root, `s${n++}-`));
  return { dir, storage: new FilesystemBackupStorage(dir) };
};

function manifestFor(id: string): BackupManifest {
  return fakeManifest(id, '2026-03-01T02:01:00.000Z', {
    startedAt: '2026-03-01T02:00:00.000Z',
    durationSeconds: 60,
    tables: { 'public.t': 1 },
  });
}

async function write(storage: FilesystemBackupStorage, id: string, text: string) {
  const w = await storage.createWriter(id);
  await pipeline(Readable.from([Buffer.from(text)]), w.stream);
  return w;
}

/** Streams `chunks` chunks of 4 KiB into a writer, pausing between them so background flushes can run. */
async function slowWrite(storage: FilesystemBackupStorage, id: string, chunks: number) {
  const w = await storage.createWriter(id);
  async function* source() {
    for (let i = 0; i < chunks; i++) {
      yield Buffer.alloc(4096, i);
      await sleep(20);
    }
  }
  await pipeline(Readable.from(source()), w.stream);
  return w;
}

describe('FilesystemBackupStorage: flushing a dump while it streams', () => {
  // Every FileHandle shares one prototype: spy on its datasync (the background flush) and sync (the commit).
  const proto = async () => {
    const h = await open(fileURLToPath(import.meta.url), 'r');
    await h.close();
    return Object.getPrototypeOf(h) as { datasync(): Promise<void>; sync(): Promise<void> };
  };
  afterEach(() => vi.restoreAllMocks());

  it('flushes in the background every syncEveryBytes, then fsyncs at the commit', async () => {
    const p = await proto();
    const datasync = vi.spyOn(p, 'datasync');
    const sync = vi.spyOn(p, 'sync');
    const dir = mkdtempSync(join(root, 'flush-'));
    const storage = new FilesystemBackupStorage(dir, 16 * 1024);
    const w = await slowWrite(storage, 'f1', 16);
    expect(datasync.mock.calls.length, 'background flushes while 64 KiB streamed').toBeGreaterThanOrEqual(2);
    expect(sync).not.toHaveBeenCalled();
    expect(await w.commit()).toEqual({ bytes: 16 * 4096 });
    expect(sync).toHaveBeenCalled();
    expect(readdirSync(dir)).toEqual(['f1.dump']);
  });

  it('fails the commit when a background flush failed (the final fsync could not report it again)', async () => {
    const p = await proto();
    vi.spyOn(p, 'datasync').mockRejectedValue(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
    const dir = mkdtempSync(join(root, 'flush-'));
    const storage = new FilesystemBackupStorage(dir, 4096);
    const w = await slowWrite(storage, 'f2', 4);
    await expect(w.commit()).rejects.toThrow('EIO');
    await w.abort();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('FilesystemBackupStorage', () => {
  it('writes to <id>.dump.partial and only shows <id>.dump after commit', async () => {
    const { dir, storage } = freshStorage();
    const w = await write(storage, 'b1', 'hello');
    expect(readdirSync(dir), 'expected only the partial file before commit').toEqual(['b1.dump.partial']);
    expect(await storage.hasDump('b1')).toBe(false);
    await w.commit();
    expect(readdirSync(dir)).toEqual(['b1.dump']);
    expect(readFileSync(join(dir, 'b1.dump'), 'utf8')).toBe('hello');
  });

  it('abort leaves nothing behind', async () => {
    const { dir, storage } = freshStorage();
    const w = await write(storage, 'b2', 'half');
    await w.abort();
    await w.abort();
    expect(readdirSync(dir), 'expected abort to remove the partial').toEqual([]);
  });

  it('refuses a manifest before the dump is committed, then writes it atomically', async () => {
    const { dir, storage } = freshStorage();
    await expect(storage.writeManifest(manifestFor('b3'))).rejects.toThrow(BackupNotFoundError);
    await (await write(storage, 'b3', 'x')).commit();
    await storage.writeManifest(manifestFor('b3'));
    expect(readdirSync(dir).sort(), 'expected no temp file left').toEqual(['b3.dump', 'b3.manifest.json']);
    expect(await storage.readManifest('b3')).toEqual(manifestFor('b3'));
    expect(await storage.list()).toEqual([{ id: 'b3', hasDump: true, hasManifest: true }]);
  });

  it('reads a committed dump and reports a missing one as BackupNotFoundError', async () => {
    const { storage } = freshStorage();
    await (await write(storage, 'b4', 'content')).commit();
    const chunks: Buffer[] = [];
    for await (const c of await storage.read('b4')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('content');
    await expect(storage.read('missing')).rejects.toThrow(BackupNotFoundError);
    expect(await storage.readManifest('missing')).toBeUndefined();
  });

  it('lists dumps without manifests and ignores foreign files; remove deletes everything of an id', async () => {
    const { dir, storage } = freshStorage();
    await (await write(storage, 'b5', 'x')).commit();
    await (await write(storage, 'b6', 'y')).commit();
    await storage.writeManifest(manifestFor('b6'));
    await write(storage, 'b7', 'partial only');
    await (await write(storage, 'b8', 'z')).commit();
    rmSync(join(dir, 'b8.dump'));
    expect(await storage.list()).toEqual([
      { id: 'b5', hasDump: true, hasManifest: false },
      { id: 'b6', hasDump: true, hasManifest: true },
    ]);
    await storage.remove('b6');
    await storage.remove('b7');
    expect(existsSync(join(dir, 'b6.dump')) || existsSync(join(dir, 'b6.manifest.json'))).toBe(false);
    expect(existsSync(join(dir, 'b7.dump.partial')), 'expected remove to delete a partial too').toBe(false);
  });

  it('rejects unsafe ids before touching the filesystem', async () => {
    const { storage } = freshStorage();
    await expect(storage.createWriter('../escape')).rejects.toThrow(InvalidBackupIdError);
    await expect(storage.read('a/b')).rejects.toThrow(InvalidBackupIdError);
  });

  it('reports a manifest that does not parse or names another backup', async () => {
    const { dir, storage } = freshStorage();
    await (await write(storage, 'b9', 'x')).commit();
    writeFileSync(join(dir, 'b9.manifest.json'), '{"id":');
    await expect(storage.readManifest('b9')).rejects.toThrow(ManifestInvalidError);
    writeFileSync(join(dir, 'b9.manifest.json'), JSON.stringify(manifestFor('other')));
    await expect(storage.readManifest('b9')).rejects.toThrow(/names backup other/);
  });
});

const pinOf = (id: string, holder = 'uid-1'): BackupPin => ({
  pinVersion: 1,
  id,
  holder,
  createdAt: '2026-03-01T00:00:00.000Z',
  expiresAt: '2026-03-01T03:00:00.000Z',
});

async function committed(storage: FilesystemBackupStorage, id: string) {
  await (await write(storage, id, 'PGDMP')).commit();
  await storage.writeManifest(manifestFor(id));
}

describe('FilesystemBackupStorage pins and removal markers', () => {
  it('writes, lists and removes pins as <id>.pin-<holder>.json', async () => {
    const { dir, storage } = freshStorage();
    await committed(storage, 'b1');
    await storage.pin(pinOf('b1'));
    await storage.pin(pinOf('b1', 'uid-2'));
    expect(readdirSync(dir).sort()).toEqual([
      'b1.dump',
      'b1.manifest.json',
      'b1.pin-uid-1.json',
      'b1.pin-uid-2.json',
    ]);
    expect((await storage.listPins('b1')).map((p) => [p.holder, p.pin?.expiresAt])).toEqual([
      ['uid-1', '2026-03-01T03:00:00.000Z'],
      ['uid-2', '2026-03-01T03:00:00.000Z'],
    ]);
    expect(await storage.list(), 'expected pins not to look like backups').toEqual([
      { id: 'b1', hasDump: true, hasManifest: true },
    ]);
    await storage.unpin('b1', 'uid-2');
    expect((await storage.listPins()).map((p) => p.holder)).toEqual(['uid-1']);
    await storage.remove('b1');
    expect(readdirSync(dir), 'expected remove to take the pins with the backup').toEqual([]);
  });

  it('keeps an unreadable pin file as a pin without content', async () => {
    const { dir, storage } = freshStorage();
    writeFileSync(join(dir, 'b2.pin-uid-1.json'), '{"torn');
    expect(await storage.listPins()).toEqual([{ id: 'b2', holder: 'uid-1', modifiedAt: expect.any(Date) }]);
  });

  it('hides a manifest under a removal marker and puts it back', async () => {
    const { dir, storage } = freshStorage();
    await committed(storage, 'b3');
    expect(await storage.markForRemoval('b3')).toBe(true);
    expect(await storage.readManifest('b3'), 'expected a hidden manifest to be invisible').toBeUndefined();
    expect(await storage.markForRemoval('b3'), 'expected a second prune to find nothing to mark').toBe(false);
    await storage.unmarkForRemoval('b3');
    expect(await storage.readManifest('b3')).toMatchObject({ id: 'b3' });
    expect(readdirSync(dir).sort()).toEqual(['b3.dump', 'b3.manifest.json']);
  });

  it('lets pin() return only once a removal in flight has been decided', async () => {
    const { dir, storage } = freshStorage();
    await committed(storage, 'b4');
    await storage.markForRemoval('b4');
    let pinned = false;
    const pinning = storage.pin(pinOf('b4')).then(() => (pinned = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(pinned, 'expected pin() to wait while the manifest is hidden').toBe(false);
    await storage.unmarkForRemoval('b4'); // the prune saw the pin and backed off
    await pinning;
    expect(await storage.readManifest('b4')).toMatchObject({ id: 'b4' });
    expect(existsSync(join(dir, 'b4.pin-uid-1.json'))).toBe(true);
  });

  it('removes stale partials and temporary files, keeps fresh ones, and puts back an abandoned marker', async () => {
    const { dir, storage } = freshStorage();
    await committed(storage, 'b5');
    await storage.markForRemoval('b5'); // a prune that crashed here
    writeFileSync(join(dir, 'b6.dump.partial'), 'half');
    writeFileSync(join(dir, 'b7.dump.partial'), 'being written');
    writeFileSync(join(dir, 'b5.pin-uid-1.json.tmp-0123abcd'), '{');
    writeFileSync(join(dir, 'not a backup.dump.partial'), 'foreign');
    const now = new Date();
    const old = new Date(now.getTime() - 3 * 3_600_000);
    for (const f of ['b5.manifest.json.removing', 'b6.dump.partial', 'b5.pin-uid-1.json.tmp-0123abcd'])
      utimesSync(join(dir, f), old, old);
    utimesSync(join(dir, 'not a backup.dump.partial'), old, old);
    expect(await storage.removeLeftovers(now, 2 * 3_600_000)).toEqual({
      partials: ['b6'],
      orphanDumps: [],
      tempFiles: 1,
      restoredManifests: ['b5'],
    });
    expect(readdirSync(dir).sort()).toEqual([
      'b5.dump',
      'b5.manifest.json',
      'b7.dump.partial',
      'not a backup.dump.partial',
    ]);
  });
});

describe('FilesystemBackupStorage leftovers: committed dumps without a manifest', () => {
  it('removes one older than the leftover age, never a young one, one with a manifest or marker, or a pinned one', async () => {
    const { dir, storage } = freshStorage();
    const now = new Date();
    const old = new Date(now.getTime() - 3 * 3_600_000);
    const dump = async (id: string) => (await write(storage, id, 'PGDMP')).commit();
    await dump('crashed'); // killed between the rename and its manifest
    await dump('writing'); // a backup about to write its manifest
    await committed(storage, 'kept');
    await committed(storage, 'hidden');
    await storage.markForRemoval('hidden'); // a prune deciding right now
    await dump('pinned');
    await storage.pin({ ...pinOf('pinned'), expiresAt: new Date(now.getTime() + 3_600_000).toISOString() });
    await dump('expired-pin');
    await storage.pin(pinOf('expired-pin')); // expired at 03:00 on 2026-03-01
    writeFileSync(join(dir, 'not a backup.dump'), 'foreign');
    for (const f of [
      'crashed.dump',
      'kept.dump',
      'kept.manifest.json',
      'hidden.dump',
      'pinned.dump',
      'expired-pin.dump',
      'not a backup.dump',
    ])
      utimesSync(join(dir, f), old, old);
    expect(await storage.removeLeftovers(now, 2 * 3_600_000)).toEqual({
      partials: [],
      orphanDumps: ['crashed', 'expired-pin'],
      tempFiles: 0,
      restoredManifests: [],
    });
    expect(readdirSync(dir).sort()).toEqual([
      'expired-pin.pin-uid-1.json',
      'hidden.dump',
      'hidden.manifest.json.removing',
      'kept.dump',
      'kept.manifest.json',
      'not a backup.dump',
      'pinned.dump',
      'pinned.pin-uid-1.json',
      'writing.dump',
    ]);
    expect(await storage.list(), 'what is left is what a selection sees, or a pinned dump').toEqual([
      { id: 'hidden', hasDump: true, hasManifest: false },
      { id: 'kept', hasDump: true, hasManifest: true },
      { id: 'pinned', hasDump: true, hasManifest: false },
      { id: 'writing', hasDump: true, hasManifest: false },
    ]);
  });
});

describe('FilesystemBackupStorage.claimRestore', () => {
  it('claims a plan UID once, durably, and never as a backup', async () => {
    const { storage } = freshStorage();
    expect(await storage.claimRestore('plan-1', { id: 'db-1' })).toBe(true);
    expect(await storage.claimRestore('plan-1', { id: 'db-1' })).toBe(false);
    expect(await storage.claimRestore('plan-2', { id: 'db-1' })).toBe(true);
    expect(await storage.list()).toEqual([]);
    await expect(storage.claimRestore('../x', {})).rejects.toThrow(/invalid plan UID/);
  });
});
