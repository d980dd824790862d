import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { link, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { WriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateBackupId } from './backup-id.js';
import type { ArchiveIdentity, BackupManifest } from './manifest.js';
import { plainManifest } from './manifest-check.js';
import { isPinLive, PIN_HOLDER_PATTERN, type BackupPin, type StoredPin } from './pins.js';

/**
 * A dump being written: the sink at the end of the backup's stream pipeline (pg_dump -> hash and TOC check
 * -> sink). Nothing is visible under the backup's id until `commit()` returns. An object-storage sink
 * (multipart upload) implements the same three members.
 */
export interface BackupWriter {
  readonly stream: Writable;
  /**
   * Makes the dump durable and visible; call after `stream` has finished. Returns what the storage holds
   * now, for the caller to compare with what it streamed.
   */
  commit(): Promise<CommittedDump>;
  /** Discards whatever was written. Safe to call more than once and after a failed commit. */
  abort(): Promise<void>;
}

/** What the writer may know of the dump before it starts. */
export interface WriterOptions {
  /**
   * The database's size before the dump (pg_database_size): object storage sizes its multipart parts from
   * it (upload-parts.ts). Undefined when it could not be read.
   */
  databaseBytes?: number;
}

export interface CommittedDump {
  /** Size of the committed dump as the storage reports it (after fsync; an object store's content length). */
  bytes: number;
  /** Object storage: the ETag (and VersionId, in a versioned bucket) of the object the upload created. */
  archive?: ArchiveIdentity;
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
  /**
   * The writer sizes what it writes from the database's size (WriterOptions.databaseBytes: object storage's
   * multipart parts), so a backup asks the database for it first. Unset: the backup does not ask.
   */
  readonly usesDatabaseSize?: boolean;
  createWriter(id: string, opts?: WriterOptions): Promise<BackupWriter>;
  /**
   * Throws BackupNotFoundError when no committed dump exists. With `archive` (from the manifest), an object
   * store reads exactly that object and refuses (ArchiveReplaced) one that replaced it.
   */
  read(id: string, archive?: ArchiveIdentity): Promise<Readable>;
  /**
   * A path to the committed dump that pg_restore can open itself: a parallel restore (`--jobs`) needs a
   * seekable file, not a stream. Undefined when the storage has no such path (an object store): the dump
   * is then streamed and restored by one job.
   */
  localFile(id: string): Promise<string | undefined>;
  hasDump(id: string): Promise<boolean>;
  list(): Promise<StoredBackup[]>;
  /**
   * Removes the manifest (or its removal marker) first, so a crash half-way never leaves a manifest
   * without its dump; then the dump, a partial and the backup's pins.
   */
  remove(id: string): Promise<void>;
  /**
   * First half of a pin-safe removal: hides the manifest under a removal marker, so from now on nobody
   * can start using the backup. False when there is no manifest (someone else removed it).
   */
  markForRemoval(id: string): Promise<boolean>;
  /** Undoes markForRemoval: the backup is visible again as it was. */
  unmarkForRemoval(id: string): Promise<void>;
  /**
   * Writes (or renews) a pin, then waits (bounded) until no removal of the backup is half-way: when it
   * returns, a prune either saw the pin or had already hidden the manifest, so reading the manifest next
   * tells the truth.
   */
  pin(pin: BackupPin): Promise<void>;
  unpin(id: string, holder: string): Promise<void>;
  /**
   * Removes the pin only if it is expired at `now` as it is removed, never one a plan's Job renewed after
   * the caller listed it. True when it removed an expired pin.
   */
  unpinIfExpired(id: string, holder: string, now: Date): Promise<boolean>;
  /** The pins in storage, of one backup or of all. */
  listPins(id?: string): Promise<StoredPin[]>;
  /**
   * Removes what interrupted runs left and nobody will finish: partial dumps, temporary manifests and
   * committed dumps without a manifest (nor removal marker, nor live pin) not written to for `staleAfterMs`
   * (a running dump writes continuously, writes its manifest right after, and every runner Job ends within
   * its deadline), and puts back manifests a crashed prune hid more than `markerStaleAfterMs` ago.
   */
  removeLeftovers(now: Date, staleAfterMs: number, markerStaleAfterMs?: number): Promise<Leftovers>;
  /** Undefined when there is none; throws ManifestInvalidError when it does not parse. */
  readManifest(id: string): Promise<BackupManifest | undefined>;
  /** Refuses to write a manifest for a dump that is not committed. */
  writeManifest(manifest: BackupManifest): Promise<void>;
  /**
   * The restore fence: creates `.restores/<planUid>` exclusively (O_EXCL) and durably, before anything is
   * restored. False when it exists: a restore of that plan already started, whatever Job ran it.
   */
  claimRestore(planUid: string, record: object): Promise<boolean>;
  /**
   * Object storage only: the dump's Object Lock retention as the server reports it (of the version `archive`
   * names, when given); undefined when none.
   */
  retentionOf?(
    id: string,
    archive?: ArchiveIdentity,
  ): Promise<{ mode: string; retainUntil: string } | undefined>;
}

/** Kubernetes UIDs (and the test ids used for them): no path separators, no dots. */
const PLAN_UID = /^[A-Za-z0-9-]{1,128}$/;
/** Directory of restore markers, beside the backups; never read as a backup (list() ignores it). */
export const RESTORES_DIR = '.restores';

export interface Leftovers {
  /** Ids whose stale partial dump was removed: `<id>.dump.partial` (or an unfinished multipart upload). */
  partials: string[];
  /** Ids whose committed `<id>.dump`, left without a manifest, removal marker or live pin, was removed. */
  orphanDumps: string[];
  /** Stale temporary files (of manifests and pins) removed. */
  tempFiles: number;
  /** Ids whose manifest was put back from the marker of a prune that never finished. */
  restoredManifests: string[];
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
const REMOVING = '.manifest.json.removing';
/** `<file>.tmp-<8 hex>`, see writeAtomically. */
const TEMP_FILE = /\.tmp-[0-9a-f]{8}$/;
const PIN_INFIX = '.pin-';
const PIN_SUFFIX = '.json';
/** A prune holds a removal marker for milliseconds; one this old was left by a crash. */
const MARKER_STALE_MS = 10 * 60_000;
/** How long pin() waits for a removal in flight to finish or back off. */
const PIN_SETTLE_MS = 10_000;

const isErrno = (e: unknown, code: string) => (e as NodeJS.ErrnoException | undefined)?.code === code;

async function unlinkIfPresent(path: string): Promise<void> {
  await unlink(path).catch((e: unknown) => {
    if (!isErrno(e, 'ENOENT')) throw e;
  });
}

async function readText(path: string): Promise<string> {
  const h = await open(path, 'r');
  try {
    return await h.readFile('utf8');
  } finally {
    await h.close();
  }
}

/** A pin object's text as pin `id`/`holder`; undefined when it does not parse (kept as an unknown pin). */
export async function parsePinText(text: string, id: string, holder: string): Promise<BackupPin | undefined> {
  // Loaded when first needed: a backup never reads a pin, and the runner pays for what it loads.
  const { BackupPinSchema } = await import('./pin-schema.js');
  try {
    const parsed = BackupPinSchema.safeParse(JSON.parse(text));
    if (parsed.success && parsed.data.id === id && parsed.data.holder === holder) return parsed.data;
  } catch {
    // unreadable: see pinExpiry
  }
  return undefined;
}

/** A manifest's text as the manifest of backup `id`; throws ManifestInvalidError when it is not one. */
export async function parseManifestText(id: string, text: string): Promise<BackupManifest> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ManifestInvalidError(id, `not JSON (${(e as Error).message})`);
  }
  const plain = plainManifest(json);
  if (plain) {
    if (plain.id !== id) throw new ManifestInvalidError(id, `it names backup ${plain.id}`);
    return plain;
  }
  const { BackupManifestSchema } = await import('./manifest.js');
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

/**
 * While a dump streams to a volume, what is written is flushed to disk in the background every this many
 * bytes, so the commit's fsync has only the tail left to write instead of the whole dump (issue 13).
 */
export const BACKGROUND_SYNC_BYTES = 8 * 1024 * 1024;
const BACKGROUND_SYNC_POLL_MS = 50;

/**
 * Flushes the file `stream` writes every `everyBytes`, through a descriptor of its own (fdatasync on any
 * descriptor of a file flushes it). A failed flush is kept for `finish` to throw: after a write-back error the
 * kernel reports it once per descriptor, so the commit's fsync on that same descriptor would not see it again.
 */
function backgroundSync(path: string, stream: WriteStream, everyBytes: number) {
  let handle: Promise<FileHandle> | undefined;
  let flushed = 0;
  let busy: Promise<void> | undefined;
  let error: unknown;
  const timer = setInterval(() => {
    const written = stream.bytesWritten;
    if (busy || error !== undefined || written - flushed < everyBytes) return;
    busy = (async () => {
      handle ??= open(path, 'r+');
      await (await handle).datasync();
      flushed = written;
    })()
      .catch((e: unknown) => {
        error = e;
      })
      .finally(() => {
        busy = undefined;
      });
  }, BACKGROUND_SYNC_POLL_MS).unref();
  const stop = async () => {
    clearInterval(timer);
    await busy;
  };
  return {
    /** Stops flushing; the descriptor for the commit's fsync, or what a background flush failed with. */
    finish: async (): Promise<FileHandle> => {
      await stop();
      if (error === undefined) return handle ?? open(path, 'r+');
      await handle?.then((h) => h.close()).catch(() => {});
      throw error;
    },
    /** Stops flushing and closes its descriptor (abort). */
    close: async () => {
      await stop();
      await handle?.then((h) => h.close()).catch(() => {});
    },
  };
}

/** Stores backups as `<id>.dump` and `<id>.manifest.json` in one directory (the mounted volume). */
export class FilesystemBackupStorage implements BackupStorage {
  readonly location: string;

  /** `syncEveryBytes`: see BACKGROUND_SYNC_BYTES; 0 flushes only at the commit. */
  constructor(
    private readonly dir: string,
    private readonly syncEveryBytes = BACKGROUND_SYNC_BYTES,
  ) {
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
    const flusher =
      this.syncEveryBytes > 0 ? backgroundSync(partial, stream, this.syncEveryBytes) : undefined;
    return {
      stream,
      commit: async () => {
        if (!stream.writableFinished || stream.errored) {
          await flusher?.close();
          throw new Error(`commit of backup ${id} before its stream finished`);
        }
        if (!stream.closed) await once(stream, 'close');
        // fsync through a second descriptor: the stream owns (and has closed) the first.
        const h = flusher ? await flusher.finish() : await open(partial, 'r+');
        let bytes: number;
        try {
          await h.sync();
          bytes = (await h.stat()).size;
        } finally {
          await h.close();
        }
        await rename(partial, final);
        await this.syncDir();
        return { bytes };
      },
      abort: async () => {
        await flusher?.close();
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

  async localFile(id: string): Promise<string | undefined> {
    if (!(await this.hasDump(id))) throw new BackupNotFoundError(id, this.location);
    return this.path(id, DUMP);
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
    await unlinkIfPresent(this.path(id, REMOVING));
    await unlinkIfPresent(this.path(id, DUMP));
    await unlinkIfPresent(this.path(id, PARTIAL));
    for (const p of await this.listPins(id)) await unlinkIfPresent(this.pinPath(id, p.holder));
    await this.syncDir();
  }

  async markForRemoval(id: string): Promise<boolean> {
    try {
      await rename(this.path(id, MANIFEST), this.path(id, REMOVING));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false;
      throw e;
    }
    await this.syncDir();
    return true;
  }

  async unmarkForRemoval(id: string): Promise<void> {
    await rename(this.path(id, REMOVING), this.path(id, MANIFEST));
    await this.syncDir();
  }

  private pinPath(id: string, holder: string): string {
    if (!PIN_HOLDER_PATTERN.test(holder)) throw new Error(`invalid pin holder ${JSON.stringify(holder)}`);
    return this.path(id, `${PIN_INFIX}${holder}${PIN_SUFFIX}`);
  }

  private async exists(path: string): Promise<boolean> {
    return stat(path).then(
      () => true,
      (e: unknown) => {
        if (isErrno(e, 'ENOENT')) return false;
        throw e;
      },
    );
  }

  async pin(pin: BackupPin): Promise<void> {
    const final = this.pinPath(pin.id, pin.holder);
    await this.writeAtomically(final, JSON.stringify(pin, null, 2) + '\n');
    // A prune that hid the manifest before our pin landed re-checks pins next: it either backs off (the
    // marker goes back to being the manifest) or removes the backup. Both take milliseconds.
    const deadline = Date.now() + PIN_SETTLE_MS;
    while ((await this.exists(this.path(pin.id, REMOVING))) && Date.now() < deadline) await sleep(50);
  }

  async unpin(id: string, holder: string): Promise<void> {
    await unlinkIfPresent(this.pinPath(id, holder));
  }

  /**
   * A renewal replaces the pin file by rename (writeAtomically), so reading the file and then unlinking its
   * path could delete a pin renewed in between. Instead the pin is moved aside to a temporary name that
   * listPins ignores, and the moved file is judged: expired, it is deleted; live (renewed after the caller
   * listed it), it is linked back, unless a still newer renewal has taken the path meanwhile. A renewal
   * that lands after the move writes a new file, which this never touches.
   */
  async unpinIfExpired(id: string, holder: string, now: Date): Promise<boolean> {
    const final = this.pinPath(id, holder);
    const aside = await this.movePinAside(final);
    if (!aside) return false; // unpinned meanwhile
    const p = await this.readPinFile(aside, id, holder);
    if (p && isPinLive(p, now)) {
      await this.putPinBack(aside, final);
      return false;
    }
    await unlinkIfPresent(aside);
    await this.syncDir();
    return p !== undefined;
  }

  /** Renames the pin to a temporary name (a stale one is cleaned up as a temporary file); undefined if gone. */
  protected async movePinAside(final: string): Promise<string | undefined> {
    const aside = `${final}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await rename(final, aside);
      return aside;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
  }

  private async putPinBack(aside: string, final: string): Promise<void> {
    try {
      await link(aside, final); // never replaces a newer pin written meanwhile (EEXIST)
    } catch (e) {
      if (isErrno(e, 'EEXIST')) {
        // a newer renewal holds the path
      } else if (isErrno(e, 'EPERM') || isErrno(e, 'ENOTSUP') || isErrno(e, 'ENOSYS')) {
        // a volume without hard links: put it back unless a renewal has, accepting a narrower race
        if (!(await this.exists(final))) await rename(aside, final);
      } else throw e;
    }
    await unlinkIfPresent(aside);
    await this.syncDir();
  }

  /** The pin file at `path` as pin `id`/`holder`; undefined when it does not exist. */
  private async readPinFile(path: string, id: string, holder: string): Promise<StoredPin | undefined> {
    let modifiedAt: Date;
    let text: string;
    try {
      modifiedAt = (await stat(path)).mtime;
      text = await readText(path);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
    const pin = await parsePinText(text, id, holder);
    return { id, holder, modifiedAt, ...(pin ? { pin } : {}) };
  }

  async listPins(id?: string): Promise<StoredPin[]> {
    const pins: StoredPin[] = [];
    for (const name of await readdir(this.dir)) {
      const at = name.indexOf(PIN_INFIX);
      if (at <= 0 || !name.endsWith(PIN_SUFFIX)) continue;
      const pinnedId = name.slice(0, at);
      const holder = name.slice(at + PIN_INFIX.length, -PIN_SUFFIX.length);
      if (id !== undefined && pinnedId !== id) continue;
      if (!PIN_HOLDER_PATTERN.test(holder)) continue;
      try {
        validateBackupId(pinnedId);
      } catch {
        continue;
      }
      const p = await this.readPinFile(join(this.dir, name), pinnedId, holder);
      if (p) pins.push(p); // else unpinned meanwhile
    }
    return pins.sort((a, b) => a.id.localeCompare(b.id) || a.holder.localeCompare(b.holder));
  }

  async removeLeftovers(
    now: Date,
    staleAfterMs: number,
    markerStaleAfterMs = MARKER_STALE_MS,
  ): Promise<Leftovers> {
    const out: Leftovers = { partials: [], orphanDumps: [], tempFiles: 0, restoredManifests: [] };
    const olderThan = async (name: string, ms: number) => {
      try {
        return now.getTime() - (await stat(join(this.dir, name))).mtime.getTime() > ms;
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return false;
        throw e;
      }
    };
    const validIdOr = (id: string) => {
      try {
        return validateBackupId(id);
      } catch {
        return undefined; // not a name we write: not ours to remove
      }
    };
    const idOf = (name: string, suffix: string) => validIdOr(name.slice(0, name.indexOf(suffix)));
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(PARTIAL)) {
        const id = idOf(name, PARTIAL);
        if (id && (await olderThan(name, staleAfterMs))) {
          await unlinkIfPresent(join(this.dir, name));
          out.partials.push(id);
        }
      } else if (TEMP_FILE.test(name)) {
        if (idOf(name, '.') && (await olderThan(name, staleAfterMs))) {
          await unlinkIfPresent(join(this.dir, name));
          out.tempFiles++;
        }
      } else if (name.endsWith(DUMP)) {
        // A committed dump left without a manifest (a runner killed between the rename and its manifest, a
        // crashed remove): no selection ever picks it. Its mtime is its last write, and a backup writes its
        // manifest within its Job's deadline of that, so one older than staleAfterMs belongs to no running
        // backup. A manifest, a removal marker or a live pin keeps it.
        const id = validIdOr(name.slice(0, -DUMP.length));
        if (!id || !(await olderThan(name, staleAfterMs))) continue;
        if (await this.exists(this.path(id, MANIFEST))) continue;
        if (await this.exists(this.path(id, REMOVING))) continue;
        if ((await this.listPins(id)).some((p) => isPinLive(p, now))) continue;
        // Judged again right before the unlink: a manifest written since keeps the dump.
        if (await this.exists(this.path(id, MANIFEST))) continue;
        await unlinkIfPresent(join(this.dir, name));
        out.orphanDumps.push(id);
      } else if (name.endsWith(REMOVING)) {
        const id = idOf(name, REMOVING);
        if (!id || !(await olderThan(name, markerStaleAfterMs))) continue;
        // The prune that hid it crashed before deciding: show the backup again for the next one to decide.
        if (await this.exists(this.path(id, MANIFEST))) await unlinkIfPresent(this.path(id, REMOVING));
        else {
          await rename(this.path(id, REMOVING), this.path(id, MANIFEST)).catch((e: unknown) => {
            if (!isErrno(e, 'ENOENT')) throw e;
          });
          out.restoredManifests.push(id);
        }
      }
    }
    if (out.partials.length || out.orphanDumps.length || out.tempFiles || out.restoredManifests.length)
      await this.syncDir();
    out.partials.sort();
    out.orphanDumps.sort();
    out.restoredManifests.sort();
    return out;
  }

  async readManifest(id: string): Promise<BackupManifest | undefined> {
    let text: string;
    try {
      text = await readText(this.path(id, MANIFEST));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw e;
    }
    return parseManifestText(id, text);
  }

  async writeManifest(manifest: BackupManifest): Promise<void> {
    const { id } = manifest;
    if (!(await this.hasDump(id))) throw new BackupNotFoundError(id, this.location);
    await this.writeAtomically(this.path(id, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  }

  /** Through a temporary file, fsync and rename: readers see the old content or the new, never a part. */
  async claimRestore(planUid: string, record: object): Promise<boolean> {
    if (!PLAN_UID.test(planUid)) throw new Error(`invalid plan UID ${JSON.stringify(planUid)}`);
    const dir = join(this.dir, RESTORES_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let h: FileHandle;
    try {
      h = await open(join(dir, planUid), 'wx', 0o600);
    } catch (e) {
      if (isErrno(e, 'EEXIST')) return false;
      throw e;
    }
    try {
      await h.writeFile(JSON.stringify(record) + '\n');
      await h.sync();
    } finally {
      await h.close();
    }
    // The entry must be durable before the restore starts: a node crash must not forget the claim.
    const d = await open(dir, 'r');
    try {
      await d.sync().catch((e: unknown) => {
        if (!isErrno(e, 'EINVAL') && !isErrno(e, 'EISDIR') && !isErrno(e, 'EPERM')) throw e;
      });
    } finally {
      await d.close();
    }
    return true;
  }

  private async writeAtomically(final: string, text: string): Promise<void> {
    const tmp = `${final}.tmp-${randomBytes(4).toString('hex')}`;
    const h = await open(tmp, 'wx', 0o600);
    try {
      await h.writeFile(text, 'utf8');
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
