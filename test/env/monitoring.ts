/**
 * A real Prometheus and a real Alertmanager (Debian's `prometheus` 2.42 and `prometheus-alertmanager` 0.25)
 * as child processes on free 127.0.0.1 ports, each in its own temp dir, with fast settings for tests.
 *
 *   const am = await LocalAlertmanager.start({ webhookUrl: `${receiverUrl}/alertmanager`, token: 't0ken' });
 *   const prom = await LocalPrometheus.start({
 *     scrapeTargets: [exporter.target],              // host:port of /metrics endpoints (test/support/exporter.ts)
 *     rules: `groups: [{name: t, rules: [{alert: HighErrorRate, expr: 'sum(rate(...)) > 1', labels: {...}}]}]`,
 *     alertmanagerUrl: am.url,                       // optional: where firing alerts go
 *   });
 *   await prom.waitForTargetsUp();
 *   await prom.query('up')                           // the /api/v1/query JSON, for waits in tests
 *   await prom.stop(); await am.stop();              // in afterAll; also restartable: prom.start() again
 *
 * Prometheus: scrape_interval and evaluation_interval 1s, alerts re-sent every 1s. Alertmanager: one route
 * grouped by all labels, group_wait 0s, group_interval 1s, repeat_interval 1m (override with `route`), no
 * clustering, the webhook with `http_config.authorization.credentials_file` when a token is given. Both are
 * waited for on /-/ready (bounded) and die with the test process (PR_SET_PDEATHSIG, reapStaleRuns).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installDebianPackages } from './debian.js';
import { freePort, ProcessGroup, reapStaleRuns, waitUntil, WORKDIR_PREFIX } from './processes.js';

const PROMETHEUS_BIN = process.env.NXT_PROMETHEUS_BIN ?? '/usr/bin/prometheus';
const ALERTMANAGER_BIN = process.env.NXT_ALERTMANAGER_BIN ?? '/usr/bin/prometheus-alertmanager';
const READY_TIMEOUT_MS = 30_000;

/** The Debian package's binary, installed on first use when we are root (as PostgreSQL is). */
function requireBinary(path: string, pkg: string): void {
  if (existsSync(path)) return;
  installDebianPackages([pkg]);
  if (!existsSync(path)) throw new Error(`${path} not found after installing Debian's '${pkg}' package`);
}

const yamlString = (s: string) => JSON.stringify(s); // JSON strings are YAML strings

async function waitReady(url: string, procs: ProcessGroup, name: string): Promise<void> {
  await waitUntil(
    `${name} to be ready at ${url}/-/ready`,
    async () => {
      const child = procs.children.get(name);
      if (!child || child.exitCode !== null || child.signalCode !== null)
        throw new Error(`${name} exited:\n${procs.logTail(name)}`);
      const r = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    },
    READY_TIMEOUT_MS,
    () => procs.logTail(name),
    200,
  );
}

export interface PrometheusOptions {
  /** host:port of /metrics endpoints to scrape, as job `app`. */
  scrapeTargets: string[];
  /** Text of one rule file (YAML), e.g. an alerting rule. */
  rules?: string;
  /** Base URL(s) of Alertmanagers to send alerts to. */
  alertmanagerUrl?: string | string[];
  /** Extra labels on every scraped series (e.g. {namespace: 'shop'}). */
  targetLabels?: Record<string, string>;
}

export class LocalPrometheus {
  readonly url: string;
  private procs: ProcessGroup | undefined;

  private constructor(
    private readonly workDir: string,
    readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(opts: PrometheusOptions): Promise<LocalPrometheus> {
    requireBinary(PROMETHEUS_BIN, 'prometheus');
    reapStaleRuns();
    const workDir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 'prometheus-'));
    const p = new LocalPrometheus(workDir, await freePort());
    mkdirSync(join(workDir, 'data'));
    const ams = [opts.alertmanagerUrl ?? []].flat().map((u) => new URL(u).host);
    const alerting = ams.length
      ? ['alerting:', '  alertmanagers:', `    - static_configs: [{targets: ${JSON.stringify(ams)}}]`]
      : [];
    if (opts.rules !== undefined) writeFileSync(join(workDir, 'rules.yml'), opts.rules);
    writeFileSync(
      join(workDir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        '  evaluation_interval: 1s',
        ...(opts.rules !== undefined ? ['rule_files: [rules.yml]'] : []),
        ...alerting,
        'scrape_configs:',
        '  - job_name: app',
        '    static_configs:',
        `      - targets: ${JSON.stringify(opts.scrapeTargets)}`,
        `        labels: ${JSON.stringify(opts.targetLabels ?? {})}`,
      ].join('\n') + '\n',
    );
    try {
      await p.start();
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  /** (Re)starts the server on the same port and data dir, e.g. after stopProcess() in a test. */
  async start(): Promise<void> {
    this.procs ??= new ProcessGroup(this.workDir);
    this.procs.start('prometheus', PROMETHEUS_BIN, [
      `--config.file=${join(this.workDir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(this.workDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${this.port}`,
      '--rules.alert.resend-delay=1s',
      '--storage.tsdb.retention.time=1h',
      '--web.enable-lifecycle',
      '--log.level=info',
    ]);
    await waitReady(this.url, this.procs, 'prometheus');
  }

  /** Stops the server but keeps its directory and port number, so start() can bring it back. */
  async stopProcess(): Promise<void> {
    await this.procs?.stopOne('prometheus');
  }

  async stop(): Promise<void> {
    await this.procs?.stopAll();
    rmSync(this.workDir, { recursive: true, force: true });
  }

  logTail(lines = 40): string {
    return this.procs?.logTail('prometheus', lines) ?? '';
  }

  /** The /api/v1/query answer for `promql` (throws on HTTP errors). */
  async query(promql: string): Promise<{ status: string; data: { resultType: string; result: unknown[] } }> {
    const r = await fetch(`${this.url}/api/v1/query?${new URLSearchParams({ query: promql })}`, {
      signal: AbortSignal.timeout(5000),
    });
    if (!r.ok) throw new Error(`query ${promql}: HTTP ${r.status}: ${await r.text()}`);
    return (await r.json()) as { status: string; data: { resultType: string; result: unknown[] } };
  }

  /** Waits until every scrape target is up (bounded). */
  async waitForTargetsUp(timeoutMs = 20_000): Promise<void> {
    await waitUntil(
      'every scrape target to be up',
      async () => {
        const r = await this.query('min(up)');
        const v = (r.data.result[0] as { value?: [number, string] } | undefined)?.value?.[1];
        return v === '1';
      },
      timeoutMs,
      () => this.logTail(),
      250,
    );
  }

  /** Waits until Prometheus reports alert `name` in `state` (pending/firing), or gone with 'inactive'. */
  async waitForAlert(
    name: string,
    state: 'pending' | 'firing' | 'inactive',
    timeoutMs = 30_000,
  ): Promise<void> {
    await waitUntil(
      `alert ${name} to be ${state} in Prometheus`,
      async () => {
        const r = await fetch(`${this.url}/api/v1/alerts`, { signal: AbortSignal.timeout(5000) });
        const alerts = (
          (await r.json()) as { data: { alerts: { labels: { alertname: string }; state: string }[] } }
        ).data.alerts.filter((a) => a.labels.alertname === name);
        return state === 'inactive' ? alerts.length === 0 : alerts.some((a) => a.state === state);
      },
      timeoutMs,
      () => this.logTail(),
      250,
    );
  }
}

export interface AlertmanagerOptions {
  /** Where the webhook_config posts (the operator's receiver URL, path included). */
  webhookUrl: string;
  /** Bearer token, written to a file and given as http_config.authorization.credentials_file. */
  token?: string;
  /** Route settings (YAML values) overriding the fast defaults. */
  route?: Partial<Record<'group_by' | 'group_wait' | 'group_interval' | 'repeat_interval', string>>;
  /** Extra YAML for the webhook's http_config.tls_config (e.g. `insecure_skip_verify: true`). */
  tlsConfig?: string;
}

export class LocalAlertmanager {
  readonly url: string;

  private constructor(
    private readonly workDir: string,
    private readonly procs: ProcessGroup,
    port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(opts: AlertmanagerOptions): Promise<LocalAlertmanager> {
    requireBinary(ALERTMANAGER_BIN, 'prometheus-alertmanager');
    reapStaleRuns();
    const workDir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX + 'alertmanager-'));
    const procs = new ProcessGroup(workDir);
    const port = await freePort();
    const am = new LocalAlertmanager(workDir, procs, port);
    try {
      mkdirSync(join(workDir, 'data'));
      const tokenFile = join(workDir, 'token');
      if (opts.token !== undefined) writeFileSync(tokenFile, opts.token, { mode: 0o600 });
      const route = {
        group_by: "['...']",
        group_wait: '0s',
        group_interval: '1s',
        repeat_interval: '1m',
        ...opts.route,
      };
      const httpConfig = [
        ...(opts.token !== undefined
          ? ['          authorization:', `            credentials_file: ${yamlString(tokenFile)}`]
          : []),
        ...(opts.tlsConfig ? ['          tls_config:', `            ${opts.tlsConfig}`] : []),
      ];
      writeFileSync(
        join(workDir, 'alertmanager.yml'),
        [
          'route:',
          '  receiver: operator',
          ...Object.entries(route).map(([k, v]) => `  ${k}: ${v}`),
          'receivers:',
          '  - name: operator',
          '    webhook_configs:',
          `      - url: ${yamlString(opts.webhookUrl)}`,
          '        send_resolved: true',
          ...(httpConfig.length ? ['        http_config:', ...httpConfig] : []),
        ].join('\n') + '\n',
      );
      procs.start('alertmanager', ALERTMANAGER_BIN, [
        `--config.file=${join(workDir, 'alertmanager.yml')}`,
        `--storage.path=${join(workDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=', // no gossip port: one instance
        '--log.level=debug',
      ]);
      await waitReady(am.url, procs, 'alertmanager');
      return am;
    } catch (e) {
      await am.stop();
      throw e;
    }
  }

  logTail(lines = 40): string {
    return this.procs.logTail('alertmanager', lines);
  }

  async stop(): Promise<void> {
    await this.procs.stopAll();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
