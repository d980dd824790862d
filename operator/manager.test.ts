import { connect, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import winston from 'winston';
import { loadConfig } from './config.js';
import { Controller } from './kube/controller.js';
import { FencedWriteError } from './kube/rest.js';
import { Manager } from './manager.js';
import { createMetrics } from './metrics.js';

const log = winston.createLogger({ silent: true });

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

type Internals = {
  serve(addr: string, route: (p: string) => [number, string] | undefined): Promise<void>;
  servers: import('node:http').Server[];
  controllers: Controller[];
  lose(): Promise<'lost'>;
};

describe('Manager: losing the lease', () => {
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const s of sockets) s.destroy();
  });

  // lose() used to await server.close() of the health and metrics servers before main() could exit. Node's
  // close() waits for connections with a request in progress; one that has sent half a request line keeps
  // it open until headersTimeout (60 s, checked every 30 s), and meanwhile the controllers of the deposed
  // leader kept reconciling next to the new one.
  it('lose() returns promptly although a client holds a half-sent request on the health port', async () => {
    const config = loadConfig({ LEADER_ELECT: 'true', HEALTH_ADDR: '127.0.0.1:0', METRICS_ADDR: '0' });
    const m = new Manager(config, kubeConfig(), log, createMetrics({ defaultMetrics: false }));
    const internals = m as unknown as Internals;
    await internals.serve('127.0.0.1:0', () => [200, 'ok']);
    const server = internals.servers[0]!;
    const port = (server.address() as { port: number }).port;
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // and nothing more
    await new Promise((r) => setTimeout(r, 200));

    const t0 = Date.now();
    const outcome = await Promise.race([
      internals.lose(),
      new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 5_000)),
    ]);
    expect(outcome, `lose() had not returned after ${Date.now() - t0} ms`).toBe('lost');
    expect(server.listening, 'the health server still listens').toBe(false);
    await new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
  }, 20_000);

  it('after the loss no reconcile starts and the client refuses writes', async () => {
    const config = loadConfig({ LEADER_ELECT: 'true', HEALTH_ADDR: '0', METRICS_ADDR: '0' });
    const m = new Manager(config, kubeConfig(), log, createMetrics({ defaultMetrics: false }));
    const reconciled: string[] = [];
    const c = new Controller(
      'test',
      { reconcile: async (req) => void reconciled.push(req.name) },
      { log, metrics: m.ctx.metrics },
    );
    (m as unknown as Internals).controllers.push(c);
    c.start();
    await (m as unknown as Internals).lose();
    c.queue.add('ns/a');
    await new Promise((r) => setTimeout(r, 50));
    expect(reconciled).toEqual([]);
    // Not the leader (the elector never acquired or has lost): a write is refused before it is sent.
    await expect(
      m.ctx.client.request('PATCH', '/api/v1/namespaces/ns/configmaps/x', { body: {} }),
    ).rejects.toBeInstanceOf(FencedWriteError);
  });
});
