import { describe, expect, it } from 'vitest';
import { isOwnBackup } from './retention.js';
import { parseS3Url } from './s3-config.js';
import { checkOwner, foreignBackup, ownerIdentityFromEnv, parseOwnerText } from './storage-owner.js';

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
