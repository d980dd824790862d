import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import winston from 'winston';
import { AlertReceiver, MAX_BODY_BYTES } from './alert-receiver.js';
import { AlertStore } from './alert-store.js';

const TOKEN = 'webhook-s3cret-token';
const payload = (alerts: object[], over: object = {}) => ({
  version: '4',
  groupKey: '{}:{alertname="HighErrorRate"}',
  truncatedAlerts: 0,
  status: 'firing',
  receiver: 'rollback',
  groupLabels: {},
  commonLabels: {},
  commonAnnotations: {},
  externalURL: 'http://alertmanager.example:9093',
  alerts,
  ...over,
});
const firing = (fp: string, labels: Record<string, string>, startsAt = '2026-11-29T10:00:00.123456789Z') => ({
  status: 'firing',
  labels,
  annotations: { summary: 'too many errors' },
  startsAt,
  endsAt: '0001-01-01T00:00:00Z',
  generatorURL: 'http://prometheus.example/graph',
  fingerprint: fp,
});

describe('Alertmanager webhook receiver', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nxt-receiver-'));
  const tokenFile = join(dir, 'token');
  const logLines: string[] = [];
  const log = winston.createLogger({
    level: 'debug',
    transports: [
      new winston.transports.Stream({
        stream: new Writable({
          write(c: Buffer, _e: string, cb: () => void) {
            logLines.push(c.toString());
            cb();
          },
        }),
      }),
    ],
  });
  let leader = true;
  const codes: number[] = [];
  const store = new AlertStore();
  let changes = 0;
  store.onChange(() => changes++);
  const receiver = new AlertReceiver({
    address: '127.0.0.1:0',
    tokenFile,
    store,
    isLeader: () => leader,
    log,
    observe: (c) => codes.push(c),
  });
  let url = '';
  const post = (
    body: unknown,
    opts: { token?: string | null; raw?: string; path?: string; method?: string } = {},
  ) =>
    fetch(`${url}${opts.path ?? '/alertmanager'}`, {
      method: opts.method ?? 'POST',
      headers: {
        'content-type': 'application/json',
        ...(opts.token === null ? {} : { authorization: `Bearer ${opts.token ?? TOKEN}` }),
      },
      body: opts.method === 'GET' ? undefined : (opts.raw ?? JSON.stringify(body)),
    });

  beforeAll(async () => {
    writeFileSync(tokenFile, `${TOKEN}\n`);
    await receiver.start();
    url = `http://127.0.0.1:${receiver.port}`;
  });
  afterAll(() => {
    receiver.httpServer?.closeAllConnections();
    receiver.httpServer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a firing alert with labels, annotations and startsAt, and resolved removes it', async () => {
    const before = changes;
    const r = await post(payload([firing('aaa1', { alertname: 'HighErrorRate', namespace: 'shop' })]));
    expect(r.status, await r.text()).toBe(200);
    expect(store.list()).toEqual([
      expect.objectContaining({
        fingerprint: 'aaa1',
        labels: { alertname: 'HighErrorRate', namespace: 'shop' },
        annotations: { summary: 'too many errors' },
        startsAt: new Date('2026-11-29T10:00:00.123Z'),
      }),
    ]);
    expect(
      store.firingMatching([{ name: 'namespace', op: '=~', value: 'sh.p' }], new Date(0))?.fingerprint,
    ).toBe('aaa1');
    expect(changes).toBe(before + 1);
    const resolved = {
      ...firing('aaa1', { alertname: 'HighErrorRate', namespace: 'shop' }),
      status: 'resolved',
    };
    expect((await post(payload([resolved], { status: 'resolved' }))).status).toBe(200);
    expect(store.size).toBe(0);
  });

  it('refuses a missing or wrong token with 401 and stores nothing; never logs the token', async () => {
    const body = payload([firing('bbb1', { alertname: 'X' })]);
    expect((await post(body, { token: null })).status).toBe(401);
    expect((await post(body, { token: 'wrong' })).status).toBe(401);
    expect((await post(body, { token: `${TOKEN}x` })).status).toBe(401);
    const basic = await fetch(`${url}/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` },
      body: JSON.stringify(body),
    });
    expect(basic.status).toBe(401);
    expect(store.size).toBe(0);
    expect(logLines.join('')).not.toContain(TOKEN);
  });

  it('answers 503 when not the leader, so Alertmanager retries; stores nothing', async () => {
    leader = false;
    try {
      const r = await post(payload([firing('ccc1', { alertname: 'X' })]));
      expect(r.status).toBe(503);
      // A retry on a new connection can reach another replica behind the Service.
      expect(r.headers.get('connection')).toBe('close');
      expect(store.size).toBe(0);
    } finally {
      leader = true;
    }
  });

  it('refuses bad input with 400 and a bounded message', async () => {
    const bad = [
      { raw: 'not json' },
      { body: { version: '3', alerts: [] } },
      { body: payload([{ status: 'firing', labels: { a: 'b' }, startsAt: 'yesterday' }]) },
      { body: payload([{ status: 'firing', labels: 'x', startsAt: '2026-11-29T10:00:00Z' }]) },
      { body: { version: '4' } },
    ];
    for (const b of bad) {
      const r = await post(b.body, { raw: b.raw });
      const text = await r.text();
      expect(r.status, JSON.stringify(b)).toBe(400);
      expect(text.length).toBeLessThanOrEqual(302);
    }
    expect(store.size).toBe(0);
  });

  it('refuses a body over 1 MiB with 413', async () => {
    const huge = payload([firing('ddd1', { alertname: 'X', big: 'y'.repeat(MAX_BODY_BYTES) })]);
    expect((await post(huge)).status).toBe(413);
    expect(store.size).toBe(0);
  });

  it('answers 404 elsewhere and 405 to other methods; counts every answer by code', async () => {
    expect((await post({}, { path: '/' })).status).toBe(404);
    expect((await post({}, { method: 'GET' })).status).toBe(405);
    expect(codes).toEqual(expect.arrayContaining([200, 401, 503, 400, 413, 404, 405]));
  });

  it('skips alerts of another status and derives a fingerprint when none is sent', async () => {
    const a = { ...firing('x', { alertname: 'NoFp' }), fingerprint: undefined };
    const odd = { ...firing('odd', { alertname: 'Odd' }), status: 'suppressed' };
    expect((await post(payload([a, odd]))).status).toBe(200);
    expect(store.list().map((s) => s.labels.alertname)).toEqual(['NoFp']);
    expect(store.list()[0]!.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    store.apply([{ ...store.list()[0]!, status: 'resolved' }]);
  });

  it('picks up a rotated token', async () => {
    writeFileSync(tokenFile, 'rotated-token');
    (receiver as unknown as { tokenReadAt: number }).tokenReadAt = 0;
    expect((await post(payload([]), { token: 'rotated-token' })).status).toBe(200);
    expect((await post(payload([]))).status).toBe(401);
    writeFileSync(tokenFile, TOKEN);
    (receiver as unknown as { tokenReadAt: number }).tokenReadAt = 0;
  });
});

describe('Alertmanager webhook receiver over TLS', () => {
  it(
    'serves HTTPS with the given certificate, reloads a renewed one, and refuses to start without a token file',
    { timeout: 30_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'nxt-receiver-tls-'));
      try {
        const newCertificate = () =>
          execFileSync(
            'openssl',
            [
              'req',
              '-x509',
              '-newkey',
              'rsa:2048',
              '-nodes',
              '-days',
              '1',
              '-subj',
              '/CN=localhost',
              '-keyout',
              join(dir, 'tls.key'),
              '-out',
              join(dir, 'tls.crt'),
            ],
            { stdio: 'ignore' },
          );
        newCertificate();
        writeFileSync(join(dir, 'token'), TOKEN);
        const store = new AlertStore();
        const log = winston.createLogger({ silent: true });
        const r = new AlertReceiver({
          address: '127.0.0.1:0',
          tokenFile: join(dir, 'token'),
          tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
          store,
          isLeader: () => true,
          log,
        });
        await r.start();
        const post = () =>
          new Promise<{ status: number; fingerprint: string }>((resolve, reject) => {
            const req = httpsRequest(
              {
                host: '127.0.0.1',
                port: r.port,
                path: '/alertmanager',
                method: 'POST',
                rejectUnauthorized: false,
                agent: false, // a new connection (and handshake) per request
                headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
              },
              (res) => {
                res.resume();
                const peer = (res.socket as TLSSocket).getPeerCertificate();
                resolve({ status: res.statusCode!, fingerprint: peer.fingerprint256 });
              },
            );
            req.on('error', reject);
            req.end(JSON.stringify(payload([firing('tls1', { alertname: 'Tls' })])));
          });
        const first = await post();
        expect(first.status).toBe(200);
        expect(store.size).toBe(1);
        expect(await r.reloadCertificate(), 'unchanged files: nothing to reload').toBe(false);
        // cert-manager renews the Secret: the next connection gets the new certificate, no restart.
        newCertificate();
        expect(await r.reloadCertificate()).toBe(true);
        const second = await post();
        expect(second.status).toBe(200);
        expect(second.fingerprint).not.toBe(first.fingerprint);
        // A half-written pair (new key, old certificate) is refused and the current one kept.
        const cert = readFileSync(join(dir, 'tls.crt'));
        newCertificate();
        writeFileSync(join(dir, 'tls.crt'), cert);
        expect(await r.reloadCertificate()).toBe(false);
        expect((await post()).fingerprint).toBe(second.fingerprint);
        r.httpServer?.closeAllConnections();
        r.httpServer?.close();
        const noToken = new AlertReceiver({
          address: '127.0.0.1:0',
          tokenFile: join(dir, 'missing'),
          store,
          isLeader: () => true,
          log,
        });
        await expect(noToken.start()).rejects.toThrow(/ALERT_RECEIVER_TOKEN_FILE/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
