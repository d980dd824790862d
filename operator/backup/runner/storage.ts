import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { validateBackupId } from './backup-id.js';
import { BackupManifestSchema, type BackupManifest } from './manifest.js';

/** A dump being written. Nothing is visible under the backup's id until `commit()` returns. */
export interface BackupWriter {
  readonly stream: Writable;
  /** Makes the dump durable and visible; call after `stream` has finished. */
  commit(): Promise<void>;
  /** Discards whatever was written. Safe to call more than once and after a failed commit. */
  abort(): Promise<void>;
}

export interface StoredBackup {
  id: string;
  hasDump: boolean;
  hasManifest: boolean;
}

/**
 * Where dumps and manifests live. The runner only talks to this interface, so object storage can be added
 * beside the filesystem implementation without touching backup or restore.
 */
export interface BackupStorage {
  /** For logs, e.g. `filesystem:/backups`. */
  readonly location: string;
  createWriter(id: string): Promise<BackupWriter>;
  /** Throws BackupNotFoundError when no committed dump exists. */
  read(id: string): Promise<Readable>;
  hasDump(id: string): Promise<boolean>;
  list(): Promise<StoredBackup[]>;
  /** Removes the manifest first, so a crash half-way never leaves a manifest without its dump. */
  remove(id: string): Promise<void>;
  /** Undefined when there is none; throws ManifestInvalidError when it does not parse. */
  readManifest(id: string): Promise<BackupManifest | undefined>;
  /** Refuses to write a manifest for a dump that is not committed. */
  writeManifest(manifest: BackupManifest): Promise<void>;
}

export class BackupNotFoundError extends Error {
  constructor(
    readonly id: string,
    where: string,
  ) {
    super(`backup ${id} has no committed dump in ${where}`);
    this.name = 'BackupNotFoundError';
  }
}

export class ManifestInvalidError extends Error {
  constructor(
    readonly id: string,
    detail: string,
  ) {
    super(`manifest of backup ${id} is unreadable: ${detail}`);
    this.name = 'ManifestInvalidError';
  }
}

const DUMP = '.dump';
const PARTIAL = '.dump.partial';
const MANIFEST = '.manifest.json';

const isErrno = (e: unknown, code: string) => (e as NodeJS.ErrnoException | undefined)?.code === code;

async function unlinkIfPresent(path: string): Promise<void> {
  await unlink(path).catch((e: unknown) => {
    if (!isErrno(e, 'ENOENT')) throw e;
  });
}

/** Stores backups as `<id>.dump` and `<id>.manifest.json` in one directory (the mounted volume). */
export class FilesystemBackupStorage implements BackupStorage {
  readonly location: string;

  constructor(private readonly dir: string) {
    this.location = `filesystem:${dir}`;
  }

  private path(id: string, suffix: string): string {
    return join(this.dir, validateBackupId(id) + suffix);
  }

  /** A rename is only durable once the directory entry is flushed too. */
  private async syncDir(): Promise<void> {
    const h = await open(this.dir, 'r');
    try {
      await h.sync();
    } catch (e) {
      // Some filesystems (and platforms) cannot fsync a directory; the rename is still atomic there.
      if (!isErrno(e, 'EINVAL') && !isErrno(e, 'EISDIR') && !isErrno(e, 'EPERM')) throw e;
    } finally {
      await h.close();
    }
  }

  async createWriter(id: string): Promise<BackupWriter> {
    const partial = this.path(id, PARTIAL);
    const final = this.path(id, DUMP);
    // 'w' truncates a partial left by a crashed attempt with the same id.
    const handle: FileHandle = await open(partial, 'w', 0o600);
    const stream = handle.createWriteStream();
    return {
      stream,
      commit: async () => {
        if (!stream.writableFinished || stream.errored) {
          throw new Error(`commit of backup ${id} before its stream finished`);
        }
        if (!stream.closed) await once(stream, 'close');
        // fsync through a second descriptor: the stream owns (and has closed) the first.
        const h = await open(partial, 'r+');
        try {
          await h.sync();
        } finally {
          await h.close();
        }
        await rename(partial, final);
        await this.syncDir();
      },
      abort: async () => {
        stream.destroy();
        if (!stream.closed) await once(stream, 'close').catch(() => {});
        await unlinkIfPresent(partial);
      },
    };
  }

  async read(id: string): Promise<Readable> {
    try {
      const handle = await open(this.path(id, DUMP), 'r');
      return handle.createReadStream();
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new BackupNotFoundError(id, this.location);
      throw e;
    }
  }

  async hasDump(id: string): Promise<boolean> {
    try {
      const h = await open(this.path(id, DUMP), 'r');
      await h.close();
      return true;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false;
      throw e;
    }
  }

  async list(): Promise<StoredBackup[]> {
    const byId = new Map<string, StoredBackup>();
    const entry = (id: string) => {
      let b = byId.get(id);
      if (!b) byId.set(id, (b = { id, hasDump: false, hasManifest: false }));
      return b;
    };
    for (const name of await readdir(this.dir)) {
      const [suffix, key] = name.endsWith(DUMP)
        ? [DUMP, 'hasDump' as const]
        : name.endsWith(MANIFEST)
          ? [MANIFEST, 'hasManifest' as const]
          : [undefined, undefined];
      if (!suffix || !key) continue;
      const id = name.slice(0, -suffix.length);
      // Files that cannot be a backup id were not written by us; leave them alone.
      try {
        validateBackupId(id);
      } catch {
        continue;
      }
      entry(id)[key] = true;
    }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  async remove(id: string): Promise<void> {
    await unlinkIfPresent(this.path(id, MANIFEST));
    await unlinkIfPresent(this.path(id, DUMP));
    await unlinkIfPresent(this.path(id, PARTIAL));
    await this.syncDir();
  }

  async readManifest(id: string): Promise<BackupManifest | undefined> {
    let text: string;
    try {
      const h = await open(this.path(id, MANIFEST), 'r');
      try {
        text = await h.readFile('utf8');
      } finally {
        await h.close();
      }
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ManifestInvalidError(id, `not JSON (${(e as Error).message})`);
    }
    const parsed = BackupManifestSchema.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw new ManifestInvalidError(
        id,
        `${first?.path.join('.') || '(root)'}: ${first?.message ?? 'invalid'}`,
      );
    }
    if (parsed.data.id !== id) throw new ManifestInvalidError(id, `it names backup ${parsed.data.id}`);
    return parsed.data;
  }

  async writeManifest(manifest: BackupManifest): Promise<void> {
    const { id } = manifest;
    if (!(await this.hasDump(id))) throw new BackupNotFoundError(id, this.location);
    const final = this.path(id, MANIFEST);
    const tmp = `${final}.tmp-${randomBytes(4).toString('hex')}`;
    const h = await open(tmp, 'wx', 0o600);
    try {
      await h.writeFile(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
      await h.sync();
      await h.close();
      await rename(tmp, final);
    } catch (e) {
      await h.close().catch(() => {});
      await unlinkIfPresent(tmp);
      throw e;
    }
    await this.syncDir();
  }
}
