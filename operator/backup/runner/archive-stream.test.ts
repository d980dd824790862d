import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { countTocEntries, startArchivePass, tocProblem } from './archive-stream.js';

const dir = mkdtempSync(join(tmpdir(), 'archive-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for pg_restore --list: reads `readBytes` of stdin, prints `out`, exits with `code`. */
function fakeList(name: string, readBytes: number, out: string, code = 0): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nhead -c ${readBytes} >/dev/null\nprintf '%s' '${out}'\nexit ${code}\n`);
  chmodSync(path, 0o755);
  return path;
}

async function passThrough(pgRestorePath: string, data: Buffer, chunk = 64 * 1024) {
  const pass = startArchivePass({ pgRestorePath, env: { PATH: process.env.PATH }, redact: (s) => s });
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) chunks.push(data.subarray(i, i + chunk));
  const received: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, done) {
      received.push(c);
      done();
    },
  });
  await pipeline(Readable.from(chunks), pass.tap, sink);
  return { result: await pass.result(), received: Buffer.concat(received) };
}

describe('startArchivePass', () => {
  const data = Buffer.alloc(4 * 1024 * 1024, 7);
  data.write('PGDMP', 0);
  const sha256 = createHash('sha256').update(data).digest('hex');

  it('passes every byte on and hashes all of them although pg_restore stops reading after the TOC', async () => {
    const list = fakeList('early', 1000, '; header\n1; 2 3 TABLE public t\n2; 4 5 TABLE DATA public t\n');
    const { result, received } = await passThrough(list, data);
    expect(received.equals(data), 'expected the sink to receive the stream unchanged').toBe(true);
    expect(result.bytes).toBe(data.length);
    expect(result.sha256).toBe(sha256);
    expect(result.toc).toMatchObject({ code: 0, entries: 2 });
    expect(tocProblem(result.toc)).toBeUndefined();
  });

  it('reports an archive pg_restore cannot read, and still delivers the stream', async () => {
    const list = fakeList('fails', 10, '', 1);
    const { result, received } = await passThrough(list, data);
    expect(received.length).toBe(data.length);
    expect(result.toc.code).toBe(1);
    expect(tocProblem(result.toc)).toMatch(/cannot read it \(exit 1\)/);
  });

  it('reports a pg_restore that cannot be started without failing the stream', async () => {
    const { result, received } = await passThrough(join(dir, 'no-such-pg_restore'), data);
    expect(received.length).toBe(data.length);
    expect(result.sha256).toBe(sha256);
    expect(tocProblem(result.toc)).toMatch(/could not run pg_restore --list/);
  });
});

describe('countTocEntries', () => {
  it('counts only entry lines', () => {
    expect(
      countTocEntries(';\n; Archive created at\n3; 2615 2200 SCHEMA - public\n10; 1259 1 TABLE x\n'),
    ).toBe(2);
    expect(countTocEntries('')).toBe(0);
  });
});
