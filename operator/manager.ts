import { createServer, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Config } from './config.js';
import { readClusterId, retryClusterId } from './cluster-id.js';
import { failpointSleep } from './failpoints.js';
import { BackgroundTasks } from './kube/background-tasks.js';
import type { Controller } from './kube/controller.js';
import { describeError } from './kube/errors.js';
import { EventRecorder } from './kube/events.js';
import { InformerFactory } from './kube/informer.js';
import { LeaderElector } from './kube/leader.js';
import { KubeClient } from './kube/rest.js';
import { sleep } from './kube/timers.js';
import type { Metrics } from './metrics.js';
import { AlertReceiver } from './triggers/alert-receiver.js';
import { AlertStore } from './triggers/alert-store.js';
import type { AlertSource } from './triggers/types.js';

/** How long a graceful stop lets a health, metrics or alert receiver response finish before cutting it off. */
const SERVER_CLOSE_GRACE_MS = 2000;

/** What every controller's setup function receives: no module-level singletons, everything passed in. */
export interface ManagerContext {
  config: Config;
  client: KubeClient;
  informers: InformerFactory;
  events: EventRecorder;
  log: Logger;
  metrics: Metrics;
  /** Long waits (HTTP checks) run here, never in a reconcile worker; aborted when the manager stops. */
  tasks: BackgroundTasks;
  /** Firing alerts from the Alertmanager webhook receiver (Alert trigger conditions). */
  alerts: AlertSource;
}

/** How start() ended: stop() was called, the lease was lost, or the caches did not sync in time. */
export type ManagerOutcome = 'stopped' | 'lost' | 'cacheSyncTimeout';

export type ControllerSetup = (ctx: ManagerContext) => Controller;

/**
 * controller-runtime's manager: health and metrics endpoints, Lease leader election, shared informers and
 * controllers, and a graceful stop (finish in-flight reconciles, then release the lease). Losing the lease
 * ends the process (exit code 1), as controller-runtime does, so no second leader keeps writing; so does a
 * cache sync that does not finish within CACHE_SYNC_TIMEOUT. The lease is renewed from acquisition until the
 * drain is over, so a slow cache sync or a long drain never leaves the lease to lapse while this replica acts.
 */
export class Manager {
  readonly ctx: ManagerContext;
  private readonly controllers: Controller[] = [];
  private readonly setups: ControllerSetup[] = [];
  private readonly servers: (Server | HttpsServer)[] = [];
  private readonly alertStore: AlertStore;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly elector: LeaderElector | undefined;
  private started = false;
  private running = false;
  private stopping: Promise<void> | undefined;
  private done!: () => void;
  private readonly finished = new Promise<void>((r) => (this.done = r));

  constructor(config: Config, kc: KubeConfig, log: Logger, metrics: Metrics) {
    const host = new URL(kc.getCurrentCluster()?.server ?? 'https://unknown').host;
    const client = new KubeClient(kc, {
      userAgent: `nxt-rollback-operator/${config.identity}`,
      observe: (method, code, seconds) => {
        metrics.restClientRequests.inc({ code: code ? String(code) : '<error>', method, host });
        metrics.restClientDuration.observe({ verb: method, host }, seconds);
      },
    });
    const informers = new InformerFactory(client, config.WATCH_NAMESPACES, {
      log,
      resyncMs: config.RESYNC_PERIOD,
    });
    const events = new EventRecorder(client, 'nxt-rollback-operator', config.identity, log);
    this.ctx = {
      config,
      client,
      informers,
      events,
      log,
      metrics,
      tasks: new BackgroundTasks(log),
      alerts: (this.alertStore = new AlertStore({
        onSize: (n) => metrics.alertsFiring.set(n),
        onDropped: (n) => metrics.alertsDropped.inc(n),
        onListenerError: (e) => log.error('alert change listener failed', { err: describeError(e) }),
      })),
    };
    if (config.LEADER_ELECT) {
      this.elector = new LeaderElector(
        client,
        {
          namespace: config.leaderElectionNamespace,
          name: config.LEADER_ELECTION_ID,
          identity: config.identity,
          leaseDurationMs: config.LEASE_DURATION,
          renewDeadlineMs: config.RENEW_DEADLINE,
          retryPeriodMs: config.RETRY_PERIOD,
        },
        log,
        (leading) => metrics.leaderStatus.set({ name: config.LEADER_ELECTION_ID }, leading ? 1 : 0),
      );
      metrics.leaderStatus.set({ name: config.LEADER_ELECTION_ID }, 0);
      const elector = this.elector;
      client.fenceWrites(() => elector.writeFenceReason());
    }
  }

  add(setup: ControllerSetup): this {
    this.setups.push(setup);
    return this;
  }

  /** Ready means: serving, and either standing by for the lease or leading with caches synced. */
  isReady(): boolean {
    if (!this.started) return false;
    if (this.elector && !this.elector.isLeader) return true;
    return this.running && this.ctx.informers.hasSynced();
  }

  /** Starts everything; resolves when the manager has stopped (stop(), leadership lost, cache sync timeout). */
  async start(): Promise<ManagerOutcome> {
    const { config, log } = this.ctx;
    await this.serve(config.HEALTH_ADDR, (path) => {
      if (path === '/healthz') return [200, 'ok'];
      if (path === '/readyz') return this.isReady() ? [200, 'ok'] : [503, 'not ready'];
      return undefined;
    });
    await this.serve(config.METRICS_ADDR, async (path) =>
      path === '/metrics'
        ? [200, await this.ctx.metrics.registry.metrics(), this.ctx.metrics.registry.contentType]
        : undefined,
    );
    await this.serveAlertReceiver();
    this.started = true;
    log.info('manager started', {
      cluster: this.ctx.client.host,
      watchNamespaces: config.WATCH_NAMESPACES.length ? config.WATCH_NAMESPACES : 'all',
      leaderElection: config.LEADER_ELECT,
    });
    if (this.elector && !(await this.elector.acquire())) {
      await this.finished;
      return 'stopped';
    }
    // Renewal started with the acquisition; from here every wait also ends when leadership is lost.
    const lost = this.elector
      ? this.elector
          .leadership()
          .then((o) => (o === 'lost' ? ('lost' as const) : new Promise<never>(() => {})))
      : new Promise<never>(() => {});
    if (this.stopping) return this.afterStop(lost);
    // Before any runner Job is built: every one of them carries it (NXT_CLUSTER_ID).
    const stopped = new AbortController();
    void this.finished.then(() => stopped.abort());
    const id = await readClusterId(this.ctx.client, log, {
      ...(config.CLUSTER_ID ? { configured: config.CLUSTER_ID } : {}),
      signal: stopped.signal,
    });
    if (id.clusterId) config.clusterId = id.clusterId;
    this.ctx.metrics.clusterIdKnown.set(id.clusterId ? 1 : 0);
    if (!id.clusterId && id.retryable) {
      // A brief API error at start-up must not leave the operator without an id for its whole life.
      config.clusterIdPending = true;
      void retryClusterId(this.ctx.client, log, { signal: stopped.signal }).then((found) => {
        if (found) config.clusterId = found;
        config.clusterIdPending = false;
        this.ctx.metrics.clusterIdKnown.set(found ? 1 : 0);
      });
    }
    if (this.stopping) return this.afterStop(lost);
    for (const setup of this.setups) this.controllers.push(setup(this.ctx));
    this.ctx.informers.start();
    const syncTimer = new AbortController();
    const synced = await Promise.race([
      Promise.all([this.ctx.informers.waitForSync(), failpointSleep('slow-cache-sync')]).then(
        () => 'synced' as const,
      ),
      // A stop() while the caches are still syncing (e.g. RBAC refuses the list) must end start() too:
      // otherwise main's top-level await never settles and Node exits with code 13 instead of 0.
      this.finished.then(() => 'stopped' as const),
      lost,
      sleep(config.CACHE_SYNC_TIMEOUT, syncTimer.signal).then(() =>
        syncTimer.signal.aborted ? new Promise<never>(() => {}) : ('timeout' as const),
      ),
    ]).finally(() => syncTimer.abort());
    if (synced === 'lost') return this.lose();
    if (synced === 'timeout') {
      log.error('timed out waiting for caches to sync; stopping (exit code 1)', {
        cacheSyncTimeout: `${config.CACHE_SYNC_TIMEOUT / 1000}s`,
        unsynced: this.ctx.informers.unsynced(),
      });
      await this.stop();
      return 'cacheSyncTimeout';
    }
    if (this.stopping) return this.afterStop(lost);
    log.info('caches synced, starting controllers');
    for (const c of this.controllers) c.start();
    this.running = true;
    return this.afterStop(lost);
  }

  /** Waits for stop() to finish, unless leadership is lost first (then the process must end at once). */
  private async afterStop(lost: Promise<'lost'>): Promise<ManagerOutcome> {
    const outcome = await Promise.race([this.finished.then(() => 'stopped' as const), lost]);
    return outcome === 'lost' ? this.lose() : 'stopped';
  }

  /**
   * Leadership lost: stop acting at once and let main() exit 1, as controller-runtime does. No new reconcile
   * starts and background tasks are aborted; reconciles still in flight are not waited for, and the client
   * already refuses their writes (the fence asks the elector). The health and metrics servers are closed
   * without waiting: a client holding a half-sent request would keep close() pending for minutes.
   */
  private lose(): Promise<'lost'> {
    this.ctx.log.error('leadership lost: stopping controllers and exiting');
    for (const c of this.controllers) c.abandon();
    this.ctx.tasks.stop();
    this.ctx.informers.stop();
    this.closeServersNow();
    return Promise.resolve('lost');
  }

  /**
   * Graceful stop: no new work, background tasks aborted, in-flight reconciles finish, informers stop, and
   * only then is the lease released. The lease is renewed all the while: the drain may take longer than
   * a lease duration, and a standby must not start while this replica still writes.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { log } = this.ctx;
      log.info('stopping manager: draining in-flight reconciles');
      this.elector?.stop(); // a candidate stops competing; a leader keeps renewing until release()
      this.ctx.tasks.stop();
      try {
        await Promise.all(this.controllers.map((c) => c.stop()));
        log.info('drain done: in-flight reconciles finished, releasing the lease');
        this.ctx.informers.stop();
        await this.elector?.release();
      } catch (e) {
        log.error('error while stopping', { err: describeError(e) });
      }
      await this.shutdownServers();
      log.info('manager stopped');
      this.done();
    })();
    return this.stopping;
  }

  /**
   * Closes the health and metrics servers, bounded: close() waits for every connection with a request in
   * progress, and a client that sends half a request line holds one open until Node's headersTimeout.
   */
  private async shutdownServers(): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.servers) s.closeIdleConnections();
    const bound = new AbortController();
    await Promise.race([closed, sleep(SERVER_CLOSE_GRACE_MS, bound.signal)]).finally(() => bound.abort());
    this.closeServersNow();
  }

  private closeServersNow(): void {
    clearInterval(this.expiryTimer);
    for (const s of this.servers) {
      s.close();
      s.closeAllConnections();
    }
    this.servers.length = 0;
  }

  /**
   * The Alertmanager webhook receiver (ALERT_RECEIVER_ADDR), on every replica: a standby answers 503 so
   * Alertmanager retries and, behind one Service, reaches the leader whose store the controllers read.
   */
  private async serveAlertReceiver(): Promise<void> {
    const { config, log, metrics } = this.ctx;
    if (config.ALERT_RECEIVER_ADDR === '0') return;
    const receiver = new AlertReceiver({
      address: config.ALERT_RECEIVER_ADDR,
      tokenFile: config.ALERT_RECEIVER_TOKEN_FILE!,
      tls:
        config.ALERT_RECEIVER_TLS_CERT_FILE && config.ALERT_RECEIVER_TLS_KEY_FILE
          ? { certFile: config.ALERT_RECEIVER_TLS_CERT_FILE, keyFile: config.ALERT_RECEIVER_TLS_KEY_FILE }
          : undefined,
      store: this.alertStore,
      isLeader: () => !this.elector || this.elector.isLeader,
      log,
      observe: (code) => metrics.alertReceiverRequests.inc({ code: String(code) }),
    });
    this.servers.push(await receiver.start());
    // Expiry is also checked on reads; this keeps nxt_alerts_firing right while nothing arrives.
    this.expiryTimer = setInterval(() => this.alertStore.expire(), 60_000);
    this.expiryTimer.unref();
  }

  private async serve(
    address: string,
    route: (
      path: string,
    ) => [number, string, string?] | undefined | Promise<[number, string, string?] | undefined>,
  ): Promise<void> {
    if (address === '0') return;
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i) || '0.0.0.0';
    const port = Number(address.slice(i + 1));
    const server = createServer((req, res) => {
      Promise.resolve(route(new URL(req.url ?? '/', 'http://x').pathname)).then(
        (r) => {
          if (!r) return res.writeHead(404).end('not found');
          res.writeHead(r[0], { 'Content-Type': r[2] ?? 'text/plain' }).end(r[1]);
        },
        (e) => res.writeHead(500).end(String(e)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.servers.push(server);
  }
}
