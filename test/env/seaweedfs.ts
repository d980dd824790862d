import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, runBuildScript } from './binaries.js';
import { createPki } from './pki.js';
import { freePort, ProcessGroup, reapStaleRuns, waitUntil, WORKDIR_PREFIX } from './processes.js';

/** Region the harness's clients sign with (SeaweedFS accepts any; AWS SDKs need one). */
export const S3_TEST_REGION = 'us-east-1';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3ServerOptions {
  /** Also serve S3 over HTTPS, with a serving certificate from a throwaway CA (test/env/pki.ts). */
  https?: boolean;
  /** Progress lines (the first use builds SeaweedFS: ~10 min cold on 2 cores). */
  log?: (m: string) => void;
  /** How long to wait for the S3 gateway to accept a write (default 90 s). */
  startTimeoutMs?: number;
}

/** A running server. `accessKeyId`/`secretAccessKey` are the admin identity: every action on every bucket. */
export interface S3Server extends S3Credentials {
  /** Plain-HTTP S3 endpoint, `http://127.0.0.1:<port>`; path-style addressing. */
  endpoint: string;
  region: string;
  /** A second identity allowed only Read and List: its writes and deletes get 403 AccessDenied. */
  readOnly: S3Credentials;
  /** `https://127.0.0.1:<port>` when started with `https: true`. */
  tlsEndpoint?: string;
  /** PEM of the CA that signed the HTTPS serving certificate (SAN 127.0.0.1 and localhost). */
  caPem?: string;
  /** The `weed` binary's version line. */
  version: string;
  /** Milliseconds from spawning `weed server` to the first successful write. */
  startMs: number;
  workDir: string;
  /** Last lines of the `weed server` log (for failure messages). */
  logTail(lines?: number): string;
  /** Stops the process and removes the data dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Returns the path of the real SeaweedFS `weed` binary, building it on first use with
 * hack/build-seaweedfs.sh (cached outside the repo, keyed by version; a no-op once cached).
 * `SEAWEEDFS_BIN` points at a prebuilt binary.
 */
export async function ensureSeaweedfsBinary(log: (m: string) => void = () => {}): Promise<string> {
  const fromEnv = process.env.SEAWEEDFS_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`SEAWEEDFS_BIN=${fromEnv} does not exist`);
    return fromEnv;
  }
  const bin = await runBuildScript(
    join(REPO_ROOT, 'hack', 'build-seaweedfs.sh'),
    '[build-seaweedfs] ',
    'seaweedfs: ',
    log,
    'the SeaweedFS weed binary',
  );
  if (!existsSync(bin)) throw new Error(`weed missing at ${bin}; re-run hack/build-seaweedfs.sh`);
  return bin;
}

const key = (prefix: string, bytes: number) => prefix + randomBytes(bytes).toString('hex').toUpperCase();

/**
 * One real SeaweedFS `weed server` process (master, volume server, filer and S3 gateway in one process) on
 * free ports of 127.0.0.1, with its data in a fresh temp dir that `stop()` removes. Two S3 identities (an
 * admin and a read-only one) come from a `-s3.config` file; anonymous access is refused. With
 * `https: true` the gateway also listens for HTTPS with a certificate signed by a throwaway CA.
 * Nothing listens beyond loopback and telemetry is off. The child dies with this process (PR_SET_PDEATHSIG)
 * and a later run's reapStaleRuns() removes a killed run's work dir.
 *
 * What this SeaweedFS (30GB 4.53) does, as test/integration/s3-server.test.ts checks: path-style requests,
 * multipart uploads (ETag `"<md5>-<parts>"`), ListMultipartUploads / AbortMultipartUpload, AccessDenied (403)
 * for an identity without Write, InvalidAccessKeyId for an unknown key, NoSuchBucket (404; buckets are never
 * created on write here), HTTPS with the given certificate, and S3 Object Lock: a bucket created with
 * `ObjectLockEnabledForBucket` reports `ObjectLockEnabled: Enabled` (versioned); an object version under
 * COMPLIANCE retention cannot be deleted (AccessDenied, also with BypassGovernanceRetention, also for the admin)
 * nor its retention shortened (403); under GOVERNANCE a delete is refused unless the caller bypasses it;
 * retention on an object of a bucket without Object Lock is refused (400). Started in 2.5 s on an idle machine
 * (HTTP up) and 11-14 s with the first write accepted under load average ~20 on 2 cores.
 */
export async function startS3Server(opts: S3ServerOptions = {}): Promise<S3Server> {
  const log = opts.log ?? (() => {});
  const weed = await ensureSeaweedfsBinary(log);
  reapStaleRuns();
  const workDir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 's3-'));
  const procs = new ProcessGroup(workDir);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await procs.stopAll();
    rmSync(workDir, { recursive: true, force: true });
    // `weed server` also serves gRPC on fixed-path Unix sockets (/tmp/seaweedfs-<service>-grpc-<port>.sock,
    // not configurable); it removes them only on a graceful stop.
    for (const f of grpcSockets) rmSync(f, { force: true });
  };
  const grpcSockets: string[] = [];
  try {
    const dataDir = join(workDir, 'data');
    mkdirSync(dataDir);
    const admin: S3Credentials = { accessKeyId: key('ADMIN', 8), secretAccessKey: key('', 20) };
    const readOnly: S3Credentials = { accessKeyId: key('READONLY', 6), secretAccessKey: key('', 20) };
    const config = {
      identities: [
        {
          name: 'harness-admin',
          credentials: [{ accessKey: admin.accessKeyId, secretKey: admin.secretAccessKey }],
          actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
        },
        {
          name: 'harness-read-only',
          credentials: [{ accessKey: readOnly.accessKeyId, secretKey: readOnly.secretAccessKey }],
          actions: ['Read', 'List'],
        },
      ],
    };
    const configFile = join(workDir, 's3.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

    let tls: { caPem: string; cert: string; key: string } | undefined;
    if (opts.https) {
      const pki = createPki(join(workDir, 'pki'));
      tls = { caPem: readFileSync(pki.caCert, 'utf8'), cert: pki.serverCert, key: pki.serverKey };
    }
    const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc, s3Https] = await Promise.all(
      Array.from({ length: 9 }, () => freePort()),
    );
    grpcSockets.push(
      ...(
        [
          ['master', masterGrpc],
          ['volume', volumeGrpc],
          ['filer', filerGrpc],
          ['s3', s3Grpc],
        ] as const
      ).map(([svc, port]) => `/tmp/seaweedfs-${svc}-grpc-${port}.sock`),
    );
    const args = [
      'server',
      '-ip=127.0.0.1',
      '-ip.bind=127.0.0.1',
      `-dir=${dataDir}`,
      `-master.port=${master}`,
      `-master.port.grpc=${masterGrpc}`,
      '-master.telemetry=false',
      // small volumes; growth of one volume at a time (below): each bucket is its own collection
      '-master.volumeSizeLimitMB=256',
      '-volume.max=0',
      `-volume.port=${volume}`,
      `-volume.port.grpc=${volumeGrpc}`,
      '-filer',
      `-filer.port=${filer}`,
      `-filer.port.grpc=${filerGrpc}`,
      `-filer.localSocket=${join(workDir, 'filer.sock')}`,
      '-s3',
      `-s3.port=${s3}`,
      `-s3.port.grpc=${s3Grpc}`,
      '-s3.port.iceberg=0',
      '-s3.port.lance=0',
      '-s3.iam=false',
      `-s3.localSocket=${join(workDir, 's3.sock')}`,
      `-s3.config=${configFile}`,
      // buckets only exist when a test creates them (NoSuchBucket is a real answer)
      '-s3.autoCreateBucket=false',
      ...(tls ? [`-s3.port.https=${s3Https}`, `-s3.cert.file=${tls.cert}`, `-s3.key.file=${tls.key}`] : []),
    ];
    const env = {
      ...process.env,
      // viper reads WEED_<section>_<key>: grow one volume per collection instead of seven
      WEED_MASTER_VOLUME_GROWTH_COPY_1: '1',
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
    };
    const version = `SeaweedFS ${execFileSync(weed, ['version'], { encoding: 'utf8' })
      .trim()
      .split('\n')[0]!
      .replace(/^version\s+/, '')
      .replace(/\s+/g, ' ')}`;
    const t0 = Date.now();
    procs.start('weed', weed, args, { env });
    const endpoint = `http://127.0.0.1:${s3}`;
    const tlsEndpoint = tls ? `https://127.0.0.1:${s3Https}` : undefined;
    const server: S3Server = {
      endpoint,
      region: S3_TEST_REGION,
      ...admin,
      readOnly,
      tlsEndpoint,
      caPem: tls?.caPem,
      version,
      startMs: 0,
      workDir,
      logTail: (lines = 40) => procs.logTail('weed', lines),
      stop,
    };
    await waitUntil(
      'the SeaweedFS S3 gateway to accept a write',
      () => probeWrite(server),
      opts.startTimeoutMs ?? 90_000,
      () => server.logTail(),
      250,
    );
    if (tlsEndpoint) {
      await waitUntil(
        'the SeaweedFS S3 HTTPS listener',
        () => httpsAnswers(tlsEndpoint, tls!.caPem),
        10_000,
        () => server.logTail(),
      );
    }
    server.startMs = Date.now() - t0;
    log(`SeaweedFS S3 at ${endpoint}${tlsEndpoint ? ` and ${tlsEndpoint}` : ''} in ${server.startMs} ms`);
    return server;
  } catch (e) {
    const tail = procs.logTail('weed');
    await stop();
    throw new Error(`starting SeaweedFS failed: ${(e as Error).message}${tail ? `\n${tail}` : ''}`);
  }
}

/**
 * Ready means a bucket can be created, written and removed: the gateway is up, the filer reached the
 * master and a volume server has registered (before that, writes fail with "no free volumes").
 */
async function probeWrite(s: S3Server): Promise<boolean> {
  const { S3Client, CreateBucketCommand, PutObjectCommand, DeleteObjectCommand, DeleteBucketCommand } =
    await import('@aws-sdk/client-s3');
  const c = new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    maxAttempts: 1,
    requestHandler: { requestTimeout: 5000, connectionTimeout: 2000, throwOnRequestTimeout: true },
  });
  const Bucket = 'harness-ready-probe';
  try {
    await c.send(new CreateBucketCommand({ Bucket })).catch((e: { name?: string }) => {
      if (e.name !== 'BucketAlreadyOwnedByYou' && e.name !== 'BucketAlreadyExists') throw e;
    });
    await c.send(new PutObjectCommand({ Bucket, Key: 'probe', Body: 'ok' }));
    await c.send(new DeleteObjectCommand({ Bucket, Key: 'probe' }));
    await c.send(new DeleteBucketCommand({ Bucket }));
    return true;
  } finally {
    c.destroy();
  }
}

function httpsAnswers(url: string, ca: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, method: 'GET', timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
