import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinaries, type Binaries } from './binaries.js';
import { createPki, type Pki } from './pki.js';
import { freePort, ProcessGroup, reapStaleRuns, waitUntil, WORKDIR_PREFIX } from './processes.js';

/** Label on the fake nodes kwok manages. Nodes without it are left alone (e.g. the test kubelet's node). */
export const KWOK_NODE_LABEL = 'nxt.test/kwok';

/**
 * The controllers kube-controller-manager runs here: what Deployments, Jobs, CronJobs, garbage collection,
 * namespace deletion, service accounts and PVC binding need. Names are the canonical ones (1.28+).
 */
export const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'job-controller',
  'cronjob-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'ttl-after-finished-controller',
  'persistentvolume-binder-controller',
  'pod-garbage-collector-controller',
];

export interface ControlPlaneOptions {
  /** Number of fake kwok nodes. */
  nodes?: number;
  /**
   * kube-controller-manager's client QPS (its default, 20, creates about 7 ReplicaSets a second: bench:scale
   * raises it to set up 10,000 Deployments in minutes). Burst is twice this.
   */
  controllerManagerQps?: number;
  log?: (m: string) => void;
}

/**
 * A real, local Kubernetes control plane: etcd, kube-apiserver (TLS, token authn, RBAC, PodSecurity on),
 * kube-controller-manager, kube-scheduler and kwok with fake nodes, on free ports of 127.0.0.1.
 */
export class LocalControlPlane {
  private constructor(
    readonly workDir: string,
    readonly bins: Binaries,
    readonly pki: Pki,
    readonly procs: ProcessGroup,
    readonly server: string,
    readonly kubeconfigPath: string,
    private readonly apiserverArgs: string[],
    private readonly log: (m: string) => void,
  ) {}

  static async start(opts: ControlPlaneOptions = {}): Promise<LocalControlPlane> {
    const log = opts.log ?? (() => {});
    const bins = await ensureBinaries(log);
    reapStaleRuns();
    const t0 = Date.now();
    const workDir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 'k8s-'));
    const procs = new ProcessGroup(workDir);
    try {
      const pki = createPki(join(workDir, 'pki'));
      const [etcdPort, peerPort, apiPort, schedPort] = await Promise.all([
        freePort(),
        freePort(),
        freePort(),
        freePort(),
      ]);
      const server = `https://127.0.0.1:${apiPort}`;

      procs.start('etcd', bins.path('etcd'), [
        '--name=default',
        `--data-dir=${join(workDir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ]);

      const apiserverArgs = [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--tls-cert-file=${pki.serverCert}`,
        `--tls-private-key-file=${pki.serverKey}`,
        `--token-auth-file=${pki.tokenFile}`,
        // Client certificates of the harness CA (the real test node's kubelet, test/env/real-node.ts), and the
        // API server's own client certificate for kubelets, so `kubectl logs/exec` work on a real node.
        // Harmless without one: kwok nodes serve no kubelet API.
        `--client-ca-file=${pki.caCert}`,
        `--kubelet-client-certificate=${pki.kubeletClientCert}`,
        `--kubelet-client-key=${pki.kubeletClientKey}`,
        `--kubelet-certificate-authority=${pki.caCert}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--allow-privileged=true',
        // No node-lifecycle controller runs, so the not-ready taint this plugin adds would never be removed.
        '--disable-admission-plugins=TaintNodesByCondition',
        '--endpoint-reconciler-type=none',
        '--profiling=false',
      ];
      const kubeconfigPath = join(workDir, 'kubeconfig');
      writeFileSync(kubeconfigPath, kubeconfigYaml(server, pki), { mode: 0o600 });
      const cp = new LocalControlPlane(workDir, bins, pki, procs, server, kubeconfigPath, apiserverArgs, log);

      await waitUntil(
        'etcd',
        () => httpOk(`http://127.0.0.1:${etcdPort}/health`),
        20_000,
        () => procs.logTail('etcd'),
      );
      await cp.startApiServer();
      log(`kube-apiserver ready at ${server} after ${Date.now() - t0} ms`);

      procs.start('kube-controller-manager', bins.path('kube-controller-manager'), [
        `--kubeconfig=${kubeconfigPath}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--secure-port=0',
        `--controllers=${CONTROLLERS.join(',')}`,
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.caCert}`,
        '--concurrent-deployment-syncs=10',
        '--concurrent-replicaset-syncs=10',
        '--concurrent-job-syncs=10',
        ...(opts.controllerManagerQps
          ? [
              `--kube-api-qps=${opts.controllerManagerQps}`,
              `--kube-api-burst=${2 * opts.controllerManagerQps}`,
            ]
          : []),
        '--v=1',
      ]);
      procs.start('kube-scheduler', bins.path('kube-scheduler'), [
        `--kubeconfig=${kubeconfigPath}`,
        `--authentication-kubeconfig=${kubeconfigPath}`,
        `--authorization-kubeconfig=${kubeconfigPath}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${schedPort}`,
        '--v=1',
      ]);
      procs.start('kwok', bins.path('kwok'), [
        `--kubeconfig=${kubeconfigPath}`,
        `--config=${bins.kwokStages}`,
        `--manage-nodes-with-label-selector=${KWOK_NODE_LABEL}=true`,
        '--cidr=10.244.0.0/16',
        '--node-ip=10.1.0.1',
        '--node-lease-duration-seconds=40',
      ]);
      await cp.createKwokNodes(opts.nodes ?? 2);
      await cp.waitForDefaultServiceAccount();
      log(`control plane ready in ${Date.now() - t0} ms (work dir ${workDir})`);
      return cp;
    } catch (e) {
      await procs.stopAll();
      const keep = process.env.NXT_KEEP_WORKDIR === 'true';
      if (!keep) rmSync(workDir, { recursive: true, force: true });
      throw e;
    }
  }

  get adminToken(): string {
    return this.pki.adminToken;
  }

  /** kubectl against this control plane, with the admin kubeconfig. */
  kubectlArgs(...args: string[]): [string, string[]] {
    return [this.bins.path('kubectl'), [`--kubeconfig=${this.kubeconfigPath}`, ...args]];
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    return apiRequest(this.server, this.pki, method, path, body);
  }

  private async startApiServer(): Promise<void> {
    this.procs.start('kube-apiserver', this.bins.path('kube-apiserver'), this.apiserverArgs);
    await waitUntil(
      'kube-apiserver /readyz',
      async () => (await this.request('GET', '/readyz')).status === 200,
      60_000,
      () => this.procs.logTail('kube-apiserver'),
      200,
    );
  }

  /** Stops the kube-apiserver process, waits `downMs`, starts it again with the same flags and waits for ready. */
  async restartApiServer(downMs = 0): Promise<void> {
    await this.procs.stopOne('kube-apiserver', 'SIGTERM');
    this.log('kube-apiserver stopped');
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.startApiServer();
    this.log('kube-apiserver restarted');
  }

  private async createKwokNodes(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const name = `kwok-node-${i}`;
      const res = await this.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          labels: {
            [KWOK_NODE_LABEL]: 'true',
            'kubernetes.io/hostname': name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            type: 'kwok',
          },
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        },
        status: {
          allocatable: { cpu: '64', memory: '256Gi', pods: '2000' },
          capacity: { cpu: '64', memory: '256Gi', pods: '2000' },
        },
      });
      if (res.status !== 201 && res.status !== 409)
        throw new Error(`creating node ${name}: ${JSON.stringify(res.body)}`);
    }
    await waitUntil(
      `${n} kwok nodes Ready`,
      async () => {
        const r = await this.request('GET', `/api/v1/nodes?labelSelector=${KWOK_NODE_LABEL}%3Dtrue`);
        const ready = (r.body.items ?? []).filter((node: any) =>
          (node.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length >= n;
      },
      30_000,
      () => this.procs.logTail('kwok'),
    );
  }

  private async waitForDefaultServiceAccount(): Promise<void> {
    await waitUntil(
      'default ServiceAccount in namespace default',
      async () =>
        (await this.request('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
      30_000,
      () => this.procs.logTail('kube-controller-manager'),
    );
  }

  async stop(): Promise<void> {
    await this.procs.stopAll();
    if (process.env.NXT_KEEP_WORKDIR === 'true') {
      this.log(`keeping ${this.workDir} (NXT_KEEP_WORKDIR=true)`);
      return;
    }
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

export function kubeconfigYaml(server: string, pki: Pick<Pki, 'caCert' | 'adminToken'>): string {
  const ca = readFileSync(pki.caCert).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: nxt-local',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${pki.adminToken}`,
    'contexts:',
    '- name: nxt-local',
    '  context: {cluster: nxt-local, user: admin, namespace: default}',
    'current-context: nxt-local',
    '',
  ].join('\n');
}

function httpOk(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    (r) => r.ok,
    () => false,
  );
}

/** One request to the API server as the harness admin (a static token); the body is parsed JSON when it is JSON. */
export function apiRequest(
  server: string,
  pki: Pick<Pki, 'caCert' | 'adminToken'>,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      new URL(path, server),
      {
        method,
        ca: readFileSync(pki.caCert),
        headers: {
          Authorization: `Bearer ${pki.adminToken}`,
          Accept: 'application/json',
          ...(data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}),
        },
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* plain text, e.g. "ok" from /readyz */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}
