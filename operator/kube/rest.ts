import { createHash } from 'node:crypto';
import https from 'node:https';
import http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from './errors.js';

export type PatchType = 'merge' | 'json' | 'apply' | 'strategic';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
  strategic: 'application/strategic-merge-patch+json',
};

export interface ResourceRef {
  group: string; // '' for the core group
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** The REST path of a resource, e.g. /apis/apps/v1/namespaces/shop/deployments/web/status. */
export function resourcePath(r: ResourceRef): string {
  // "." and ".." survive encodeURIComponent and the URL parser resolves them: /namespaces/a/rollbackplans/..
  // would address a different path. No Kubernetes object or namespace has such a name.
  for (const [what, v] of [
    ['name', r.name],
    ['namespace', r.namespace],
  ] as const)
    if (v === '.' || v === '..') throw new Error(`${what} "${v}" is not a valid object ${what}`);
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = r.namespace ? `/namespaces/${encodeURIComponent(r.namespace)}` : '';
  const name = r.name ? `/${encodeURIComponent(r.name)}` : '';
  const sub = r.name && r.subresource ? `/${r.subresource}` : '';
  return `${base}${ns}/${r.plural}${name}${sub}`;
}

export interface RequestObserver {
  (method: string, code: number, seconds: number): void;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
    [k: string]: unknown;
  };
  [k: string]: any;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeList<T = KubeObject> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** Idle keep-alive connections to the API server are closed after this long. */
const AGENT_IDLE_TIMEOUT_MS = 30_000;

const stripUndefined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** A write the client refused to send because this process may no longer write (see fenceWrites). */
export class FencedWriteError extends Error {}

/**
 * A small JSON client on top of @kubernetes/client-node's KubeConfig (auth, TLS). Objects stay raw JSON,
 * so nothing is renamed or dropped by typed (de)serialisation, and errors carry only metav1.Status fields.
 */
export class KubeClient {
  private readonly server: URL;
  /** The keep-alive agent every request shares, and the TLS material it was made for (see agentFor). */
  private agent: { key: string; agent: http.Agent } | undefined;
  constructor(
    readonly kc: KubeConfig,
    private readonly opts: { userAgent?: string; timeoutMs?: number; observe?: RequestObserver } = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
  }

  get host(): string {
    return this.server.host;
  }

  private writeFence: (() => string | undefined) | undefined;

  /**
   * Fencing: before every write (any method but GET), `why` is asked; if it names a reason, the write is
   * refused without being sent. The manager fences on leadership, so a reconcile still in flight when the
   * lease is lost (or a timer that fires late after a blocked event loop) cannot write next to the new leader.
   * Requests made with `unfenced` (the lease's own) are not asked.
   */
  fenceWrites(why: () => string | undefined): void {
    this.writeFence = why;
  }

  async request<T = any>(
    method: string,
    path: string,
    init: {
      body?: unknown;
      contentType?: string;
      query?: Record<string, string | number | boolean | undefined>;
      timeoutMs?: number;
      unfenced?: boolean;
    } = {},
  ): Promise<T> {
    const url = new URL(path, this.server);
    const fenced = method !== 'GET' && !init.unfenced ? this.writeFence?.() : undefined;
    if (fenced) throw new FencedWriteError(`${method} ${url.pathname} refused: ${fenced}`);
    for (const [k, v] of Object.entries(init.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const options: https.RequestOptions = {
      method,
      headers: {
        Accept: 'application/json',
        'User-Agent': this.opts.userAgent ?? 'nxt-rollback-operator',
      },
    };
    await this.kc.applyToHTTPSOptions(options);
    options.agent = this.agentFor(options, url.protocol === 'http:');
    const data = init.body === undefined ? undefined : JSON.stringify(init.body);
    if (data !== undefined) {
      (options.headers as Record<string, string | number>)['Content-Type'] =
        init.contentType ?? 'application/json';
      (options.headers as Record<string, string | number>)['Content-Length'] = Buffer.byteLength(data);
    }
    const started = process.hrtime.bigint();
    const transport = url.protocol === 'http:' ? http : https;
    const timeoutMs = init.timeoutMs ?? this.opts.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const req = transport.request(url, { ...options, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          this.opts.observe?.(method, code, Number(process.hrtime.bigint() - started) / 1e9);
          const text = Buffer.concat(chunks).toString('utf8');
          let body: any = undefined;
          if (text) {
            try {
              body = JSON.parse(text);
            } catch {
              body = text;
            }
          }
          if (code >= 200 && code < 300) return resolve(body as T);
          const status = typeof body === 'object' && body ? body : {};
          reject(
            new KubeApiError(
              code,
              status.reason ?? (res.statusMessage || 'Error'),
              status.message ?? (typeof body === 'string' ? body.slice(0, 500) : ''),
              method,
              url.pathname,
              status.details,
            ),
          );
        });
      });
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${url.pathname}: timed out after ${timeoutMs} ms`)),
      );
      req.on('error', (e) => {
        this.opts.observe?.(method, 0, Number(process.hrtime.bigint() - started) / 1e9);
        reject(e);
      });
      if (data !== undefined) req.write(data);
      req.end();
    });
  }

  /**
   * client-node's applyToHTTPSOptions makes a new Agent for every call, so every request would open (and
   * TLS-handshake) a connection of its own and leave it idle behind. One keep-alive agent is shared instead,
   * for as long as the TLS material stays the same (a rotated client certificate or CA gets a new agent; the
   * old one's idle sockets time out). A proxy's agent (cluster.proxyUrl) is used as client-node made it.
   */
  private agentFor(options: https.RequestOptions, plainHttp: boolean): http.Agent | undefined {
    if (this.kc.getCurrentCluster()?.proxyUrl)
      return options.agent instanceof http.Agent ? options.agent : undefined;
    const tls = {
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      pfx: options.pfx,
      passphrase: options.passphrase,
      rejectUnauthorized: options.rejectUnauthorized,
      servername: options.servername,
    };
    const h = createHash('sha256');
    for (const [k, v] of Object.entries(tls)) {
      h.update(`${k}:`);
      if (v !== undefined) h.update(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v));
      h.update('\u0000');
    }
    const key = `${plainHttp}:${h.digest('hex')}`;
    if (this.agent?.key !== key) {
      const common = { keepAlive: true, timeout: AGENT_IDLE_TIMEOUT_MS, scheduling: 'lifo' as const };
      this.agent = {
        key,
        agent: plainHttp ? new http.Agent(common) : new https.Agent({ ...common, ...stripUndefined(tls) }),
      };
    }
    return this.agent.agent;
  }

  get<T = KubeObject>(ref: ResourceRef): Promise<T> {
    return this.request<T>('GET', resourcePath(ref));
  }

  /** Lists every page (limit/continue) so callers never see a partial list. */
  async list<T = KubeObject>(
    ref: ResourceRef,
    query: { labelSelector?: string; fieldSelector?: string; limit?: number } = {},
  ): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.request<KubeList<T>>('GET', resourcePath(ref), {
        query: { ...query, limit: query.limit ?? 500, continue: cont },
      });
      items.push(...(page.items ?? []));
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion;
    } while (cont);
    return { metadata: { resourceVersion }, items };
  }

  create<T = KubeObject>(ref: ResourceRef, body: unknown): Promise<T> {
    return this.request<T>('POST', resourcePath({ ...ref, name: undefined }), { body });
  }

  patch<T = KubeObject>(
    ref: ResourceRef,
    type: PatchType,
    body: unknown,
    query: { fieldManager?: string; force?: boolean; dryRun?: 'All' } = {},
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(ref), {
      body,
      contentType: PATCH_CONTENT_TYPE[type],
      query,
    });
  }

  delete(
    ref: ResourceRef,
    opts: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan'; preconditionsUid?: string } = {},
  ) {
    return this.request('DELETE', resourcePath(ref), {
      body: {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        ...(opts.propagationPolicy ? { propagationPolicy: opts.propagationPolicy } : {}),
        ...(opts.preconditionsUid ? { preconditions: { uid: opts.preconditionsUid } } : {}),
      },
    });
  }
}
