import { describe, expect, it } from 'vitest';
import { isOwnBackup } from './retention.js';
import { parseS3Url } from './s3-config.js';
import {
  checkOwner,
  decideOwner,
  foreignBackup,
  foreignClusterFromEnv,
  ownerIdentityFromEnv,
  type StorageOwner,
} from './storage-owner.js';
import { parseOwnerText } from './storage-owner-schema.js';

const loc = 's3://b/db';

describe('S3 prefix ownership', () => {
  it('reads the identity from NXT_NAMESPACE and NXT_SCHEDULE_NAME; none without a namespace', () => {
    expect(ownerIdentityFromEnv({ NXT_NAMESPACE: 'a', NXT_SCHEDULE_NAME: 'orders' })).toEqual({
      namespace: 'a',
      name: 'orders',
    });
    expect(ownerIdentityFromEnv({ NXT_NAMESPACE: 'a' })).toEqual({ namespace: 'a' });
    expect(ownerIdentityFromEnv({ NXT_SCHEDULE_NAME: 'orders' })).toBeUndefined();
  });

  it('accepts the owner (any UID) and refuses a same-named schedule of another namespace, naming the owner', () => {
    const owner = { namespace: 'team-a', name: 'orders' };
    expect(() => checkOwner(owner, { namespace: 'team-a', name: 'orders' }, loc)).not.toThrow();
    expect(() => checkOwner(owner, { namespace: 'team-a' }, loc)).not.toThrow();
    expect(() => checkOwner(owner, { namespace: 'team-b', name: 'orders' }, loc)).toThrow(
      expect.objectContaining({
        reason: 'StorageOwnedByOther',
        message: expect.stringContaining('team-a/orders'),
      }),
    );
    expect(() => checkOwner(owner, { namespace: 'team-a', name: 'other' }, loc)).toThrow(/team-a\/orders/);
  });

  it('never takes over an unreadable owner object', () => {
    expect(() => parseOwnerText('{"namespace":""}', loc)).toThrow(
      expect.objectContaining({ reason: 'StorageOwnedByOther' }),
    );
    expect(parseOwnerText('{"namespace":"a","name":"o","created":"x"}', loc)).toMatchObject({ name: 'o' });
  });

  it('calls a backup foreign when its manifest names another namespace or schedule', () => {
    const self = { namespace: 'team-a', name: 'orders' };
    const m = (namespace?: string, name?: string) => ({
      id: 'orders-backup-1',
      origin: { ...(namespace ? { namespace } : {}), ...(name ? { schedule: { name } } : {}) },
    });
    expect(foreignBackup(m('team-a', 'orders'), self)).toBeUndefined();
    expect(foreignBackup(m(undefined, 'orders'), self)).toBeUndefined();
    expect(foreignBackup({ id: 'x' }, self)).toBeUndefined();
    expect(foreignBackup(m('team-b', 'orders'), self)).toMatch(/team-b\/orders/);
    expect(foreignBackup(m('team-a', 'shop'), self)).toMatch(/team-a\/shop/);
    expect(foreignBackup(m('team-b', 'orders'), undefined)).toBeUndefined();
  });

  it('retention and latest never count a backup of another namespace as their own', () => {
    const b = (namespace?: string) => ({
      id: 'orders-backup-1',
      origin: { ...(namespace ? { namespace } : {}), schedule: { name: 'orders', uid: 'u' } },
    });
    const self = { name: 'orders', namespace: 'team-a' };
    expect(isOwnBackup(b('team-a'), self)).toBe(true);
    expect(isOwnBackup(b(), self)).toBe(true);
    expect(isOwnBackup(b('team-b'), self)).toBe(false);
  });

  it('refuses a --storage-url prefix segment starting with "."', () => {
    expect(() => parseS3Url('s3://bucket/db/.pins/x')).toThrow(/starting with \./);
    expect(() => parseS3Url('s3://bucket/.hidden')).toThrow(/starting with \./);
    expect(parseS3Url('s3://bucket/db/a.b').prefix).toBe('db/a.b/');
  });
});

describe('S3 prefix ownership across clusters', () => {
  const now = new Date('2026-11-30T01:00:00Z');
  const A = 'uid-cluster-a';
  const B = 'uid-cluster-b';
  const self = (clusterId?: string) => ({
    namespace: 'shop',
    name: 'orders',
    ...(clusterId ? { clusterId } : {}),
  });
  const owned = (clusterId?: string): StorageOwner => ({
    namespace: 'shop',
    name: 'orders',
    ...(clusterId ? { clusterId } : {}),
    created: '2026-01-01T00:00:00.000Z',
  });
  const decide = (
    stored: StorageOwner | undefined,
    clusterId: string | undefined,
    access: 'read' | 'write',
    foreign?: { clusterId: string; allow: 'Restore' | 'TakeOver' },
  ) => decideOwner(stored, self(clusterId), access, foreign, loc, now);
  const refusedByCluster = expect.objectContaining({
    reason: 'StorageOwnedByOtherCluster',
    message: expect.stringMatching(new RegExp(`cluster ${A}.*cluster ${B}`)),
  });

  it('reads NXT_CLUSTER_ID and spec.storage.s3.foreignCluster from the env; a half setting is refused', () => {
    expect(ownerIdentityFromEnv({ NXT_NAMESPACE: 'a', NXT_SCHEDULE_NAME: 'o', NXT_CLUSTER_ID: A })).toEqual({
      namespace: 'a',
      name: 'o',
      clusterId: A,
    });
    expect(foreignClusterFromEnv({})).toBeUndefined();
    expect(
      foreignClusterFromEnv({ NXT_S3_FOREIGN_CLUSTER_ID: A, NXT_S3_FOREIGN_CLUSTER_ALLOW: 'Restore' }),
    ).toEqual({ clusterId: A, allow: 'Restore' });
    expect(() => foreignClusterFromEnv({ NXT_S3_FOREIGN_CLUSTER_ID: A })).toThrow(
      expect.objectContaining({ reason: 'InvalidArguments' }),
    );
    expect(() =>
      foreignClusterFromEnv({ NXT_S3_FOREIGN_CLUSTER_ID: A, NXT_S3_FOREIGN_CLUSTER_ALLOW: 'Everything' }),
    ).toThrow(expect.objectContaining({ reason: 'InvalidArguments' }));
  });

  it('claims a new prefix with the cluster id (none when it is unknown)', () => {
    expect(decide(undefined, A, 'write')).toEqual({
      action: 'claim',
      owner: { namespace: 'shop', name: 'orders', clusterId: A, created: now.toISOString() },
    });
    expect(decide(undefined, undefined, 'write')).toEqual({
      action: 'claim',
      owner: { namespace: 'shop', name: 'orders', created: now.toISOString() },
    });
  });

  it('an owner object whose cluster id is not one is unreadable, never matched or taken over', () => {
    for (const clusterId of ['', 'has space', '"; rm', 'x'.repeat(129)])
      expect(() =>
        parseOwnerText(JSON.stringify({ namespace: 'shop', name: 'orders', clusterId }), loc),
      ).toThrow(
        expect.objectContaining({
          reason: 'StorageOwnedByOther',
          message: expect.stringContaining('unreadable'),
        }),
      );
    expect(parseOwnerText(JSON.stringify(owned(A)), loc)).toMatchObject({ clusterId: A });
  });

  it('a read never writes: it claims no prefix and records no cluster id', () => {
    expect(decide(undefined, A, 'read')).toEqual({ action: 'use' });
    expect(decide(undefined, undefined, 'read')).toEqual({ action: 'use' });
    expect(decide(owned(), A, 'read')).toEqual({ action: 'use' });
  });

  it("a standby (foreignCluster naming the primary) never claims or adopts the primary's prefix unless TakeOver", () => {
    const restore = { clusterId: A, allow: 'Restore' as const };
    const takeOver = { clusterId: A, allow: 'TakeOver' as const };
    const standbyRefused = expect.objectContaining({
      reason: 'StorageOwnedByOtherCluster',
      message: expect.stringMatching(new RegExp(`foreignCluster says this prefix is cluster ${A}'s`)),
    });
    // No owner object (written before owner objects, or expired by a lifecycle rule): reads use it unclaimed,
    // writes are refused.
    expect(decide(undefined, B, 'read', restore)).toEqual({ action: 'use' });
    expect(() => decide(undefined, B, 'write', restore)).toThrow(standbyRefused);
    // An owner object without a cluster id: reads use it, a write never adopts it.
    expect(decide(owned(), B, 'read', restore)).toEqual({ action: 'use' });
    expect(() => decide(owned(), B, 'write', restore)).toThrow(standbyRefused);
    // TakeOver claims / rewrites with takenOverFrom, so the primary is refused by a deliberate act only.
    expect(decide(undefined, B, 'write', takeOver)).toMatchObject({
      action: 'claim',
      owner: { clusterId: B, takenOverFrom: A },
    });
    expect(decide(owned(), B, 'write', takeOver)).toMatchObject({
      action: 'rewrite',
      owner: { clusterId: B, takenOverFrom: A },
    });
    expect(() => decide(undefined, undefined, 'write', takeOver)).toThrow(
      expect.objectContaining({ reason: 'ClusterIdUnknown' }),
    );
    // In the primary itself the same manifest changes nothing: it claims and adopts as before.
    expect(decide(undefined, A, 'write', restore)).toMatchObject({
      action: 'claim',
      owner: { clusterId: A },
    });
    expect(decide(owned(), A, 'write', restore)).toMatchObject({
      action: 'rewrite',
      owner: { clusterId: A },
    });
  });

  it('an adopted prefix refuses another cluster naming when and by whom it was adopted, and how to reclaim it', () => {
    const adopted = decide(owned(), A, 'write') as { owner: StorageOwner };
    expect(adopted.owner.adopted).toBe(now.toISOString());
    expect(() => decide(adopted.owner, B, 'write')).toThrow(
      expect.objectContaining({
        reason: 'StorageOwnedByOtherCluster',
        message: expect.stringMatching(
          new RegExp(
            `Cluster ${A} adopted this prefix at ${now.toISOString()}.*allow: TakeOver\\} here reclaims it.*CLUSTER_ID`,
          ),
        ),
      }),
    );
  });

  it('a runner without a cluster id is refused with ClusterIdUnknown by an owner object that records one', () => {
    expect(() => decide(owned(A), undefined, 'write')).toThrow(
      expect.objectContaining({
        reason: 'ClusterIdUnknown',
        message: expect.stringMatching(/NXT_CLUSTER_ID unset.*cannot tell whether this is that cluster/),
      }),
    );
    expect(() => decide(owned(A), undefined, 'read')).toThrow(
      expect.objectContaining({ reason: 'ClusterIdUnknown' }),
    );
  });

  it('no take-back ping-pong: a cluster never takes back a prefix taken over from it', () => {
    const takenFromB: StorageOwner = { ...owned(A), takenOverFrom: B, updated: now.toISOString() };
    expect(() => decide(takenFromB, B, 'write', { clusterId: A, allow: 'TakeOver' })).toThrow(
      expect.objectContaining({
        reason: 'StorageOwnedByOtherCluster',
        message: expect.stringMatching(
          new RegExp(`cluster ${A} took this prefix over from this cluster \\(${B}\\)`),
        ),
      }),
    );
    // Reads stay allowed, and a third cluster may still take it over.
    expect(decide(takenFromB, B, 'read', { clusterId: A, allow: 'TakeOver' })).toMatchObject({
      action: 'use',
    });
    expect(decide(takenFromB, 'uid-c', 'write', { clusterId: A, allow: 'TakeOver' })).toMatchObject({
      action: 'rewrite',
    });
  });

  it("the owner's own cluster uses its prefix; the same namespace/name of another cluster is refused, reads and writes", () => {
    expect(decide(owned(A), A, 'write')).toEqual({ action: 'use' });
    expect(decide(owned(A), A, 'read')).toEqual({ action: 'use' });
    expect(() => decide(owned(A), B, 'write')).toThrow(refusedByCluster);
    expect(() => decide(owned(A), B, 'read')).toThrow(refusedByCluster);
    // An operator that could not learn its id cannot prove it is the owner's cluster.
    expect(() => decide(owned(A), undefined, 'write')).toThrow(
      expect.objectContaining({ reason: 'ClusterIdUnknown' }),
    );
    // Another namespace/name is refused as before, whatever the cluster.
    expect(() =>
      decideOwner(
        owned(A),
        { namespace: 'other', name: 'orders', clusterId: A },
        'read',
        undefined,
        loc,
        now,
      ),
    ).toThrow(expect.objectContaining({ reason: 'StorageOwnedByOther' }));
  });

  it('an owner object from before cluster ids gets the id of the first writer of the same namespace/name', () => {
    expect(decide(owned(), B, 'read')).toEqual({ action: 'use' });
    expect(decide(owned(), undefined, 'write')).toEqual({ action: 'use' });
    expect(decide(owned(), B, 'write')).toEqual({
      action: 'rewrite',
      owner: { ...owned(), clusterId: B, adopted: now.toISOString(), updated: now.toISOString() },
      note: expect.stringContaining(B),
    });
  });

  it('foreignCluster Restore lets another cluster read, never write; naming another cluster allows nothing', () => {
    const restore = { clusterId: A, allow: 'Restore' as const };
    expect(decide(owned(A), B, 'read', restore)).toMatchObject({
      action: 'use',
      note: expect.stringContaining(A),
    });
    expect(() => decide(owned(A), B, 'write', restore)).toThrow(refusedByCluster);
    expect(() => decide(owned(A), B, 'read', { clusterId: 'uid-cluster-c', allow: 'Restore' })).toThrow(
      refusedByCluster,
    );
    // In the owner's own cluster the same setting changes nothing (one manifest for both clusters).
    expect(decide(owned(A), A, 'write', restore)).toEqual({ action: 'use' });
  });

  it('foreignCluster TakeOver: the first write takes the prefix over, and the old cluster is refused from then on', () => {
    const takeOver = { clusterId: A, allow: 'TakeOver' as const };
    expect(decide(owned(A), B, 'read', takeOver)).toMatchObject({ action: 'use' });
    const d = decide(owned(A), B, 'write', takeOver);
    expect(d).toEqual({
      action: 'rewrite',
      owner: {
        namespace: 'shop',
        name: 'orders',
        clusterId: B,
        created: '2026-01-01T00:00:00.000Z',
        takenOverFrom: A,
        updated: now.toISOString(),
      },
      note: expect.stringContaining(`took the prefix over from cluster ${A}`),
    });
    const after = (d as { owner: StorageOwner }).owner;
    expect(decide(after, B, 'write', takeOver)).toEqual({ action: 'use' });
    // The old cluster, even with the same manifest (foreignCluster names itself), no longer writes or reads.
    expect(() => decide(after, A, 'write', takeOver)).toThrow(
      expect.objectContaining({ reason: 'StorageOwnedByOtherCluster' }),
    );
    expect(() => decide(after, A, 'read', takeOver)).toThrow(
      expect.objectContaining({ reason: 'StorageOwnedByOtherCluster' }),
    );
    // Taking over needs this cluster's own id.
    expect(() => decide(owned(A), undefined, 'write', takeOver)).toThrow(/does not know its own cluster/);
  });
});
