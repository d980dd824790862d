import { describe, expect, it } from 'vitest';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { checkS3Secrets, secretDigest } from './prerequisites.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const secret = (
  rv: string,
  data: Record<string, string>,
  annotations?: Record<string, string>,
): KubeObject => ({
  metadata: {
    name: 's3-keys',
    namespace: 'ns',
    resourceVersion: rv,
    ...(annotations ? { annotations } : {}),
  },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});
const KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
const creds = { AWS_ACCESS_KEY_ID: 'AKIA0000', AWS_SECRET_ACCESS_KEY: 'very-secret-value-123' };

describe('secretDigest (the storage probe hash input of a Secret)', () => {
  it('changes with the values of the keys used, not with the resourceVersion, annotations or other keys', () => {
    const base = secretDigest(secret('1', creds), KEYS);
    expect(base).toMatch(/^[a-f0-9]{16}$/);
    expect(secretDigest(secret('2', creds, { touched: 'now' }), KEYS)).toBe(base);
    expect(secretDigest(secret('3', { ...creds, OTHER: 'x' }), KEYS)).toBe(base);
    expect(secretDigest(secret('4', { ...creds, AWS_SECRET_ACCESS_KEY: 'rotated' }), KEYS)).not.toBe(base);
    const asStringData: KubeObject = { metadata: { name: 's3-keys' }, stringData: creds };
    expect(secretDigest(asStringData, KEYS)).toBe(base);
  });

  it('checkS3Secrets puts the digest (never the value) into versions', async () => {
    let current = secret('10', creds);
    const client = { get: async () => current } as unknown as KubeClient;
    const s3 = { bucket: 'b', credentialsSecretRef: { name: 's3-keys' } } as never;
    const v1: Record<string, string> = {};
    expect(await checkS3Secrets(client, 'ns', s3, v1)).toBeUndefined();
    current = secret('11', creds, { 'kubectl.kubernetes.io/last-applied-configuration': '{}' });
    const v2: Record<string, string> = {};
    await checkS3Secrets(client, 'ns', s3, v2);
    expect(v2).toEqual(v1);
    expect(JSON.stringify(v1)).not.toContain(creds.AWS_SECRET_ACCESS_KEY);
    expect(JSON.stringify(v1)).not.toContain(b64(creds.AWS_SECRET_ACCESS_KEY));
  });
});
