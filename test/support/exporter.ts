import { createServer, type Server } from 'node:http';

/** Per-second rates of the exporter's counters. */
export interface ExporterRates {
  /** http_requests_total{code="200"} */
  ok: number;
  /** http_requests_total{code="500"} */
  error: number;
  /** http_requests_total{code="401"} */
  unauthorized: number;
  /** auth_failures_total */
  authFailures: number;
}

const TICK_MS = 100;

/**
 * A stand-in application for Prometheus to scrape: GET /metrics on 127.0.0.1 exposes the counters
 * http_requests_total{code="200"|"500"|"401"} and auth_failures_total, every series from the start (at 0),
 * so a ratio of rates with no traffic is NaN rather than an empty vector, as with a real idle app.
 * A timer adds rate × 0.1 every 100 ms; setRates() changes the rates at once.
 *
 *   const app = await TestExporter.start({ ok: 50 });
 *   // Prometheus scrapes app.target ("127.0.0.1:<port>")
 *   app.setRates({ ok: 50, error: 20 });             // unset rates keep their value
 *   await app.stop();
 */
export class TestExporter {
  private readonly counters = { ok: 0, error: 0, unauthorized: 0, authFailures: 0 };
  private rates: ExporterRates;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly server: Server,
    rates: Partial<ExporterRates>,
  ) {
    this.rates = { ok: 0, error: 0, unauthorized: 0, authFailures: 0, ...rates };
    this.timer = setInterval(() => {
      for (const k of Object.keys(this.counters) as (keyof ExporterRates)[])
        this.counters[k] += (this.rates[k] * TICK_MS) / 1000;
    }, TICK_MS);
  }

  static async start(rates: Partial<ExporterRates> = {}): Promise<TestExporter> {
    const self: { exporter?: TestExporter } = {};
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(self.exporter!.exposition());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self.exporter = new TestExporter(server, rates);
    return self.exporter;
  }

  /** host:port for a Prometheus scrape config. */
  get target(): string {
    return `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  setRates(rates: Partial<ExporterRates>): void {
    this.rates = { ...this.rates, ...rates };
  }

  exposition(): string {
    const c = this.counters;
    return [
      '# HELP http_requests_total Requests served, by status code.',
      '# TYPE http_requests_total counter',
      `http_requests_total{code="200"} ${c.ok}`,
      `http_requests_total{code="500"} ${c.error}`,
      `http_requests_total{code="401"} ${c.unauthorized}`,
      '# HELP auth_failures_total Failed authentications.',
      '# TYPE auth_failures_total counter',
      `auth_failures_total ${c.authFailures}`,
      '',
    ].join('\n');
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
