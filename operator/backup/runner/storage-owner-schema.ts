import { z } from 'zod';
import { RunnerFailure } from './failure.js';
import { CLUSTER_ID_PATTERN, OWNER_OBJECT, type StorageOwner } from './storage-owner.js';

// Apart from storage-owner.ts: every command reads the owner identity from its env (cli.ts), and zod is loaded
// only where an owner object is parsed, on object storage (s3-storage.ts, probe-storage.ts), not by a backup
// to a volume (issue 13: a runner pays for what it loads on every Job).

export const StorageOwnerSchema = z.object({
  namespace: z.string().min(1),
  name: z.string().min(1),
  /** Absent in owner objects written before clusters were told apart, or by an operator that did not know it. */
  clusterId: z.string().regex(CLUSTER_ID_PATTERN).optional(),
  created: z.string().optional(),
  /** The cluster this one took the prefix over from (spec.storage.s3.foreignCluster.allow TakeOver), and when. */
  takenOverFrom: z.string().regex(CLUSTER_ID_PATTERN).optional(),
  /** When a cluster recorded its id in an owner object that had none (the upgrade adoption). */
  adopted: z.string().optional(),
  updated: z.string().optional(),
});

/** The stored owner object's text, parsed; a RunnerFailure when it is not one (never silently taken over). */
export function parseOwnerText(text: string, location: string): StorageOwner {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const r = StorageOwnerSchema.safeParse(parsed);
  if (!r.success) {
    throw new RunnerFailure(
      'StorageOwnedByOther',
      `${location} has an unreadable owner object ${OWNER_OBJECT}; refusing to use it. ` +
        'Remove the object only if this prefix is meant for this schedule',
    );
  }
  return r.data;
}
