import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitAfterFlush, ownVersion } from './exit.js';
import { buildProgram } from './main.js';

describe('exitAfterFlush', () => {
  it('exits only after every stream has flushed what was written before', () => {
    const callbacks: (() => void)[] = [];
    const stream = { write: (_: string, cb: () => void) => (callbacks.push(cb), false) };
    const exits: number[] = [];
    exitAfterFlush(3, [stream, stream], (c) => exits.push(c));
    expect(exits).toEqual([]);
    callbacks[0]!();
    expect(exits).toEqual([]);
    callbacks[1]!();
    expect(exits).toEqual([3]);
  });
});

describe('--version', () => {
  it("is this package's own version, not npm_package_version of the project that runs npm", () => {
    const saved = process.env.npm_package_version;
    process.env.npm_package_version = '9.9.9-other-project';
    try {
      expect(buildProgram().version()).not.toBe('9.9.9-other-project');
      expect(buildProgram().version()).toBe(ownVersion());
    } finally {
      if (saved === undefined) delete process.env.npm_package_version;
      else process.env.npm_package_version = saved;
    }
  });
  it('finds the package.json of nxt-rollback-operator from a deeper directory (dist/operator/cli)', () => {
    const root = mkdtempSync(join(tmpdir(), 'nxt-version-'));
    writeFileSync(
      join(root, 'package.json'),
      JSON.stringify({ name: 'nxt-rollback-operator', version: '1.2.3' }),
    );
    const deep = join(root, 'dist', 'operator', 'cli');
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(root, 'dist', 'package.json'), JSON.stringify({ type: 'module' }));
    expect(ownVersion(deep)).toBe('1.2.3');
  });
});
