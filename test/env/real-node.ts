/**
 * A real Kubernetes node for the local test control plane: Debian's containerd 1.6 and runc, and a kubelet
 * built from the same wrapper module as the other Kubernetes binaries (hack/build-kubelet.sh). Pods on it
 * really run: images, users, read-only root filesystems, seccomp, capabilities, `kubectl logs` / `exec`.
 *
 * API (stable; the e2e suite and `NXT_REAL_NODE=1` use it):
 *
 *   startRealNode(cluster: RealNodeCluster, opts?: RealNodeOptions): Promise<RealNode>
 *     `cluster` is a LocalControlPlane (or anything with its `server`, `pki` and `request`). Installs the Debian
 *     packages it lacks (containerd, runc, containernetworking-plugins), builds and caches the kubelet and the
 *     pause/probe programs, then starts containerd and the kubelet with everything under one temp work dir
 *     and registers the node (default name `localhost`) with the label `nxt.test/real-node=true` and the
 *     taint `nxt.test/real-node=true:NoSchedule`, so only pods that select and tolerate it go there; kwok
 *     nodes keep serving every other pod. Resolves once the node is Ready.
 *
 *   RealNode
 *     nodeName                      the Node's name
 *     placement                     { nodeSelector, tolerations }: spread into a pod spec to run it here
 *     pauseImage, probeImage        images already imported (imagePullPolicy: Never). The probe prints
 *                                   uid=, gid=, rootfs=read-only|writable, capeff=, seccomp=, nonewprivs=
 *                                   lines, then `done`; args -message TEXT, -sleep DURATION, -exit CODE
 *                                   (hack/node-images/probe/main.go)
 *     importImage(ociArchivePath)   imports an OCI archive (`podman save --format oci-archive`) into the
 *                                   node's image store; resolves to the image names it holds
 *     images()                      names of the images in the node's store
 *     ctr(...args)                  runs `ctr` against the node's containerd in namespace k8s.io
 *     workDir, containerdAddress, kubeletLog(), containerdLog()
 *     leftovers()                   what of the node still exists (processes, mounts, bridge, cgroups,
 *                                   log links, kernel settings its kubelet changed, the work dir); [] after
 *                                   stop()
 *     stop()                        removes the Node object, stops the kubelet and containerd and removes
 *                                   every container, mount, network link, cgroup and the image store, and
 *                                   writes back the kernel settings the kubelet changes at start (recorded
 *                                   in the work dir before it starts; node-sweep.ts KUBELET_SYSCTLS);
 *                                   throws if anything is left. Idempotent.
 *
 *   realNodeUnsupportedReason(): string | undefined   why this machine cannot run a real node (not root, not
 *                                   Linux, no cgroup controllers), or undefined
 *
 * Design notes: the node writes test/env/node-sweep.ts's state file before it creates anything outside its
 * work dir; that module's sweep removes a node's leftovers without the kubelet or containerd, so stop() also
 * cleans up after Ctrl-C (which kills both) and processes.ts's reapStaleRuns after a run killed with -9.
 * Networking: pods get a bridge with a private /24 that only this host reaches (no forwarding, no NAT, no
 * iptables rules); pods that must reach the API server or PostgreSQL on 127.0.0.1 need hostNetwork. The
 * node's InternalIP (so a hostNetwork pod's IP) is the bridge's host address: the kubelet refuses a loopback
 * one; it listens on 127.0.0.1 and the API server reaches it as `localhost`. Needs:
 * root, Linux, cgroup v1 or v2 (KubeletConfiguration failCgroupV1: false). containerd runs with
 * restrict_oom_score_adj (root here lacks CAP_SYS_RESOURCE).
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, runBuildScript } from './binaries.js';
import { installDebianPackages } from './debian.js';
import {
  acquireMachine,
  cgroupHierarchies,
  NODE_STATE_FILE,
  nodeLeftovers,
  sweepNodeDir,
  type NodeState,
} from './node-sweep.js';
import { signCert, type Pki } from './pki.js';
import { freePort, ProcessGroup, reapStaleRuns, waitUntil, WORKDIR_PREFIX } from './processes.js';

const run = promisify(execFile);

/** Label and taint key of the real node. */
export const REAL_NODE_LABEL = 'nxt.test/real-node';

export interface RealNodeCluster {
  server: string;
  pki: Pick<Pki, 'caCert' | 'caKey'>;
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export interface RealNodeOptions {
  /**
   * Node name; default `localhost`. Two real nodes in one cluster need different names, but the API server
   * reaches a kubelet by its node name (the Hostname address), so `kubectl logs/exec` work on `localhost` only.
   */
  nodeName?: string;
  log?: (m: string) => void;
}

export interface PodPlacement {
  nodeSelector: Record<string, string>;
  tolerations: { key: string; operator: 'Equal'; value: string; effect: 'NoSchedule' }[];
}

export interface RealNode {
  readonly nodeName: string;
  readonly workDir: string;
  readonly placement: PodPlacement;
  readonly pauseImage: string;
  readonly probeImage: string;
  /** containerd's socket (for `ctr --address`). */
  readonly containerdAddress: string;
  importImage(ociArchivePath: string): Promise<string[]>;
  images(): Promise<string[]>;
  ctr(...args: string[]): Promise<string>;
  kubeletLog(lines?: number): string;
  containerdLog(lines?: number): string;
  leftovers(): string[];
  stop(): Promise<void>;
}

const CNI_BIN_DIR = '/usr/lib/cni';
const REQUIRED_CGROUP_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'];

/** Why this machine cannot run a real node, or undefined when it can. */
export function realNodeUnsupportedReason(): string | undefined {
  if (process.platform !== 'linux') return `a real node needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'a real node needs root (containerd, runc, mounts, cgroups)';
  const v1 = cgroupHierarchies().map((h) => h.split('/').pop() ?? '');
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  if (!v2) {
    const missing = REQUIRED_CGROUP_CONTROLLERS.filter((c) => !v1.some((h) => h.split(',').includes(c)));
    if (missing.length) return `a real node needs the cgroup controllers ${missing.join(', ')}`;
  }
  return undefined;
}

function missingPackages(): string[] {
  const missing: string[] = [];
  if (!existsSync('/usr/bin/containerd') || !existsSync('/usr/bin/ctr')) missing.push('containerd');
  if (!existsSync('/usr/sbin/runc') && !existsSync('/usr/bin/runc')) missing.push('runc');
  if (!['bridge', 'host-local', 'loopback'].every((p) => existsSync(join(CNI_BIN_DIR, p))))
    missing.push('containernetworking-plugins');
  // `ip` makes the pods' bridge (and the sweep deletes it)
  if (!existsSync('/usr/sbin/ip') && !existsSync('/usr/bin/ip') && !existsSync('/sbin/ip'))
    missing.push('iproute2');
  return missing;
}

/** Debian packages a real node needs; .ci/run installs them up front, startRealNode installs what is missing. */
export const REAL_NODE_PACKAGES = ['containerd', 'runc', 'containernetworking-plugins', 'iproute2'];

export async function startRealNode(cluster: RealNodeCluster, opts: RealNodeOptions = {}): Promise<RealNode> {
  const log = opts.log ?? (() => {});
  const unsupported = realNodeUnsupportedReason();
  if (unsupported) throw new Error(unsupported);
  const t0 = Date.now();
  const missing = missingPackages();
  if (missing.length) installDebianPackages(missing, log);
  const [kubeletDir, imagesDir] = await Promise.all([
    runBuildScript(
      join(REPO_ROOT, 'hack', 'build-kubelet.sh'),
      '[build-kubelet] ',
      'kubelet: ',
      log,
      'the kubelet',
    ),
    runBuildScript(
      join(REPO_ROOT, 'hack', 'build-node-images.sh'),
      '[build-node-images] ',
      'node images: ',
      log,
      'the pause and probe programs',
    ),
  ]);
  const pause = ensureImageArchive(imagesDir, 'pause', { entrypoint: ['/pause'], user: '65535:65535' });
  const probe = ensureImageArchive(imagesDir, 'probe', { entrypoint: ['/probe'], user: '65532:65532' });
  reapStaleRuns();

  const nodeName = opts.nodeName ?? 'localhost';
  const id = randomBytes(3).toString('hex');
  const workDir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 'node-'));
  const containerdSock = join(workDir, 'containerd', 'containerd.sock');
  const state: NodeState = {
    cgroupName: `nxt-node-${id}`,
    bridge: `nxtbr${id}`,
    cniNetwork: `nxt-node-${id}`,
    containerdAddress: containerdSock,
    containerdState: join(workDir, 'containerd', 'state'),
    machineRecord: true,
  };
  writeFileSync(join(workDir, NODE_STATE_FILE), JSON.stringify(state, null, 2));
  const procs = new ProcessGroup(workDir);
  // Before the kubelet starts: the first real node on the machine saves the kernel settings and claims the
  // host paths the kubelet makes; the last one to stop (this one's sweep, or another node's) puts them back.
  const machine = acquireMachine(workDir);
  state.sysctls = machine.sysctls;
  state.createdHostPaths = machine.createdHostPaths;
  writeFileSync(join(workDir, NODE_STATE_FILE), JSON.stringify(state, null, 2));
  const dirs = {
    pki: join(workDir, 'pki'),
    containerdRoot: join(workDir, 'containerd', 'root'),
    containerdState: state.containerdState,
    cniConf: join(workDir, 'cni', 'net.d'),
    cniIpam: join(workDir, 'cni', 'ipam'),
    kubeletRoot: join(workDir, 'kubelet'),
    podLogs: join(workDir, 'pod-logs'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const bindingName = `nxt-test-real-node-${nodeName}`;

  const ctr = async (...args: string[]) =>
    (
      await run('ctr', ['--address', containerdSock, '--namespace', 'k8s.io', ...args], {
        maxBuffer: 16 * 1024 * 1024,
        timeout: 300_000,
      })
    ).stdout;
  const images = async () =>
    (await ctr('images', 'list', '--quiet')).split('\n').filter((l) => l && !l.startsWith('sha256:'));
  const importImage = async (archive: string) => {
    if (!existsSync(archive)) throw new Error(`image archive ${archive} not found`);
    const before = new Set(await images());
    await ctr('images', 'import', archive);
    const after = await images();
    const added = after.filter((n) => !before.has(n));
    log(`imported ${archive}: ${added.join(', ') || '(already present)'}`);
    return after;
  };
  let stopped = false;
  let subnet = '';
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const t = Date.now();
    await procs.stopOne('kubelet');
    await Promise.allSettled([
      cluster.request('DELETE', `/api/v1/nodes/${nodeName}`),
      cluster.request('DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${bindingName}`),
    ]);
    await procs.stopAll();
    sweepNodeDir(workDir, log);
    log(`real node ${nodeName} removed in ${Date.now() - t} ms`);
  };

  try {
    // cgroups: the kubelet's cgroupRoot must exist in every hierarchy; cpuset needs cpus and mems set.
    for (const h of cgroupHierarchies()) {
      const d = join(h, state.cgroupName);
      mkdirSync(d, { recursive: true });
      if (existsSync(join(h, 'cpuset.cpus')) && !existsSync(join(h, 'cgroup.controllers'))) {
        for (const f of ['cpuset.cpus', 'cpuset.mems'])
          writeFileSync(join(d, f), readFileSync(join(h, f), 'utf8').trim() || '0');
      }
    }

    // certificates from the harness CA: the kubelet's client identity (system:node:<name>) and its serving cert
    const client = signCert(dirs.pki, cluster.pki.caCert, cluster.pki.caKey, 'kubelet-client', {
      subject: `/O=system:nodes/CN=system:node:${nodeName}`,
      usage: 'clientAuth',
    });
    const serving = signCert(dirs.pki, cluster.pki.caCert, cluster.pki.caKey, 'kubelet-serving', {
      subject: `/CN=${nodeName}`,
      usage: 'serverAuth',
      sans: ['DNS:localhost', 'IP:127.0.0.1', ...(nodeName !== 'localhost' ? [`DNS:${nodeName}`] : [])],
    });
    // The API server authorizes with RBAC only (no Node authorizer): bind the node's built-in role to it.
    const crb = await cluster.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: bindingName },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:node' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `system:node:${nodeName}` }],
    });
    if (crb.status !== 201 && crb.status !== 409)
      throw new Error(`creating ClusterRoleBinding ${bindingName}: ${JSON.stringify(crb.body)}`);
    const kubeconfig = join(workDir, 'kubelet.kubeconfig');
    writeFileSync(kubeconfig, clientKubeconfig(cluster.server, cluster.pki.caCert, client.cert, client.key), {
      mode: 0o600,
    });

    // the pods' network: a bridge with a host address, no forwarding and no NAT (see the header)
    subnet = await freeSubnet();
    await run('ip', ['link', 'add', state.bridge, 'type', 'bridge']);
    await run('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', state.bridge]);
    await run('ip', ['link', 'set', state.bridge, 'up']);
    writeFileSync(
      join(dirs.cniConf, '10-nxt.conflist'),
      JSON.stringify(
        {
          cniVersion: '0.4.0',
          name: state.cniNetwork,
          plugins: [
            {
              type: 'bridge',
              bridge: state.bridge,
              isGateway: false,
              ipMasq: false,
              hairpinMode: true,
              ipam: {
                type: 'host-local',
                dataDir: dirs.cniIpam,
                ranges: [
                  [{ subnet: `${subnet}.0/24`, rangeStart: `${subnet}.10`, rangeEnd: `${subnet}.250` }],
                ],
              },
            },
          ],
        },
        null,
        2,
      ),
    );

    const containerdConfig = join(workDir, 'containerd', 'config.toml');
    writeFileSync(
      containerdConfig,
      containerdToml({
        root: dirs.containerdRoot,
        state: dirs.containerdState,
        sock: containerdSock,
        opt: join(workDir, 'containerd', 'opt'),
        runcRoot: join(workDir, 'containerd', 'runc'),
        cniConf: dirs.cniConf,
        sandboxImage: pause.name,
      }),
    );
    procs.start('containerd', 'containerd', ['--config', containerdConfig]);
    await waitUntil(
      'containerd',
      async () => existsSync(containerdSock) && (await ctr('version').then(() => true)),
      30_000,
      () => procs.logTail('containerd'),
      200,
    );
    for (const img of [pause, probe]) await ctr('images', 'import', img.archive);

    const [port, healthzPort] = await Promise.all([freePort(), freePort()]);
    const kubeletConfig = join(workDir, 'kubelet-config.yaml');
    writeFileSync(
      kubeletConfig,
      JSON.stringify(
        {
          apiVersion: 'kubelet.config.k8s.io/v1beta1',
          kind: 'KubeletConfiguration',
          address: '127.0.0.1',
          port,
          readOnlyPort: 0,
          healthzBindAddress: '127.0.0.1',
          healthzPort,
          tlsCertFile: serving.cert,
          tlsPrivateKeyFile: serving.key,
          authentication: {
            anonymous: { enabled: false },
            webhook: { enabled: false },
            x509: { clientCAFile: cluster.pki.caCert },
          },
          authorization: { mode: 'AlwaysAllow' },
          cgroupDriver: 'cgroupfs',
          cgroupRoot: `/${state.cgroupName}`,
          cgroupsPerQOS: true,
          // this kernel (and CI's) mounts cgroup v1: the kubelet refuses it unless told otherwise
          failCgroupV1: false,
          failSwapOn: false,
          containerRuntimeEndpoint: `unix://${containerdSock}`,
          imageServiceEndpoint: `unix://${containerdSock}`,
          podLogsDir: dirs.podLogs,
          // no iptables chains (KUBE-FIREWALL, KUBE-IPTABLES-HINT) on the host
          makeIPTablesUtilChains: false,
          // root here lacks CAP_SYS_RESOURCE: the default -999 cannot be set
          oomScoreAdj: 0,
          // never garbage-collect the imported images (they cannot be pulled again)
          imageGCHighThresholdPercent: 100,
          imageGCLowThresholdPercent: 99,
          evictionHard: {
            'memory.available': '100Mi',
            'nodefs.available': '1%',
            'imagefs.available': '1%',
            'nodefs.inodesFree': '1%',
          },
          registerNode: true,
          registerWithTaints: [{ key: REAL_NODE_LABEL, value: 'true', effect: 'NoSchedule' }],
          serializeImagePulls: false,
          maxPods: 50,
          clusterDomain: 'cluster.local',
          resolvConf: '',
          shutdownGracePeriod: '0s',
          staticPodPath: '',
        },
        null,
        2,
      ),
    );
    procs.start('kubelet', join(kubeletDir, 'kubelet'), [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${dirs.kubeletRoot}`,
      `--hostname-override=${nodeName}`,
      // the kubelet refuses a loopback node IP: the bridge's host address (the API server reaches the
      // kubelet by its Hostname address, `localhost`, where it listens)
      `--node-ip=${subnet}.1`,
      `--node-labels=${REAL_NODE_LABEL}=true`,
      '--v=2',
    ]);
    await waitUntil(
      `real node ${nodeName} Ready`,
      async () => {
        const r = await cluster.request('GET', `/api/v1/nodes/${nodeName}`);
        return (r.body?.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
      },
      120_000,
      () => procs.logTail('kubelet', 40),
      500,
    );
    log(`real node ${nodeName} Ready in ${Date.now() - t0} ms (work dir ${workDir})`);
  } catch (e) {
    const tail = procs.logTail('kubelet', 20) || procs.logTail('containerd', 20);
    await stop().catch((err) => log(`cleaning up the failed real node: ${String(err)}`));
    throw new Error(`starting the real node failed: ${(e as Error).message}${tail ? `\n${tail}` : ''}`);
  }

  return {
    nodeName,
    workDir,
    placement: {
      nodeSelector: { [REAL_NODE_LABEL]: 'true', 'kubernetes.io/hostname': nodeName },
      tolerations: [{ key: REAL_NODE_LABEL, operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
    },
    pauseImage: pause.name,
    probeImage: probe.name,
    containerdAddress: containerdSock,
    importImage,
    images,
    ctr,
    kubeletLog: (lines = 40) => procs.logTail('kubelet', lines),
    containerdLog: (lines = 40) => procs.logTail('containerd', lines),
    leftovers: () => nodeLeftovers(workDir, state),
    stop,
  };
}

/** A 10.89.X.0/24 no address or route of this host uses (so two real nodes on one machine do not collide). */
async function freeSubnet(): Promise<string> {
  const used = (await run('ip', ['-o', 'route', 'show'])).stdout + (await run('ip', ['-o', 'addr'])).stdout;
  for (let i = 0; i < 100; i++) {
    const prefix = `10.89.${1 + Math.floor(Math.random() * 254)}`;
    if (!used.includes(prefix + '.')) return prefix;
  }
  throw new Error('no free 10.89.X.0/24 subnet for the real node');
}

function clientKubeconfig(server: string, ca: string, cert: string, key: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority': ca } }],
    users: [{ name: 'kubelet', user: { 'client-certificate': cert, 'client-key': key } }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'kubelet' } }],
    'current-context': 'local',
  });
}

function containerdToml(c: {
  root: string;
  state: string;
  sock: string;
  opt: string;
  runcRoot: string;
  cniConf: string;
  sandboxImage: string;
}): string {
  const q = (s: string) => JSON.stringify(s);
  return `version = 2
root = ${q(c.root)}
state = ${q(c.state)}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${q(c.sock)}

[ttrpc]
  address = ""

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(c.opt)}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(c.sandboxImage)}
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below the daemon's own
  restrict_oom_score_adj = true
  # network namespaces under the state dir, so the node's clean-up finds them
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(CNI_BIN_DIR)}
    conf_dir = ${q(c.cniConf)}
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${q(c.runcRoot)}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
`;
}

/**
 * An OCI image archive (as `podman save --format oci-archive` writes) with one static binary at /<program> in
 * a FROM-scratch image, made without podman so no image store is left behind. Cached beside the binary,
 * keyed by its content; the image is named `localhost/nxt-test/<program>:<hash>`.
 */
function ensureImageArchive(
  binDir: string,
  program: string,
  config: { entrypoint: string[]; user: string },
): { name: string; archive: string } {
  const bin = join(binDir, program);
  const hash = createHash('sha256').update(readFileSync(bin)).update(JSON.stringify(config)).digest('hex');
  const name = `localhost/nxt-test/${program}:${hash.slice(0, 12)}`;
  const archive = join(binDir, `${program}-${hash.slice(0, 12)}.oci.tar`);
  if (existsSync(archive)) return { name, archive };
  const tmp = mkdtempSync(join(tmpdir(), 'nxt-oci-'));
  try {
    const layerDir = join(tmp, 'layer');
    mkdirSync(layerDir);
    copyFileSync(bin, join(layerDir, program));
    const layerTar = join(tmp, 'layer.tar');
    tarSync([
      '--create',
      '--file',
      layerTar,
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '--mode=0755',
      '-C',
      layerDir,
      program,
    ]);
    const oci = join(tmp, 'oci');
    const blobs = join(oci, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const putBlob = (data: Buffer) => {
      const d = createHash('sha256').update(data).digest('hex');
      writeFileSync(join(blobs, d), data);
      return { digest: `sha256:${d}`, size: data.length };
    };
    const layer = putBlob(readFileSync(layerTar));
    const cfg = putBlob(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { Entrypoint: config.entrypoint, User: config.user, WorkingDir: '/', Env: ['PATH=/'] },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
          history: [{ created: '1970-01-01T00:00:00Z', created_by: `nxt-test: /${program}` }],
        }),
      ),
    );
    const manifest = putBlob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        }),
      ),
    );
    writeFileSync(join(oci, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(
      join(oci, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            platform: { architecture: 'amd64', os: 'linux' },
            annotations: {
              'io.containerd.image.name': name,
              'org.opencontainers.image.ref.name': hash.slice(0, 12),
            },
          },
        ],
      }),
    );
    tarSync(['--create', '--file', archive + '.tmp', '-C', oci, 'oci-layout', 'index.json', 'blobs']);
    renameSync(archive + '.tmp', archive);
    return { name, archive };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function tarSync(args: string[]): void {
  execFileSync('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
