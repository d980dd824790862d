import { createHash } from 'node:crypto';
import type { Rejection } from './errors.js';

/**
 * Writes of child objects the API server rejected for good (a permanent Rejection), remembered with a
 * fingerprint of what was sent: the same write is not sent again until something that goes into it (the
 * spec, usually) changes. A reconcile triggered by an unrelated event then reports the known rejection
 * instead of asking the API server again. Bounded; lives as long as its reconciler.
 */
export class RejectedWrites {
  private readonly rejected = new Map<string, { fingerprint: string; rejection: Rejection }>();

  constructor(private readonly max = 1024) {}

  /** The rejection of exactly this write, if it was rejected before. */
  find(key: string, body: unknown): Rejection | undefined {
    const known = this.rejected.get(key);
    return known && known.fingerprint === fingerprint(body) ? known.rejection : undefined;
  }

  remember(key: string, body: unknown, rejection: Rejection): void {
    this.rejected.delete(key);
    this.rejected.set(key, { fingerprint: fingerprint(body), rejection });
    if (this.rejected.size > this.max) this.rejected.delete(this.rejected.keys().next().value!);
  }

  forget(key: string): void {
    this.rejected.delete(key);
  }
}

const fingerprint = (body: unknown) => createHash('sha256').update(JSON.stringify(body)).digest('hex');
