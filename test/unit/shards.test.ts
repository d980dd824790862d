import { describe, expect, it } from 'vitest';
import { phasesOf, splitArgs, splitProjects, weightedShard, WEIGHTS } from '../env/shards.js';

const spec = (path: string, project = 'integration') => ({ path, project });
const key = (s: { path: string; project: string }) => s;

describe('weightedShard', () => {
  const files = [
    ...Object.keys(WEIGHTS).map((n) => spec(`/test/integration/${n}.test.ts`)),
    ...Array.from({ length: 20 }, (_, i) => spec(`/test/integration/small-${i}.test.ts`)),
    ...Array.from({ length: 50 }, (_, i) => spec(`/operator/x/u${i}.test.ts`, 'unit')),
  ];

  it('puts every file in exactly one shard', () => {
    for (const count of [1, 2, 3]) {
      const all = Array.from({ length: count }, (_, i) => weightedShard(files, key, i + 1, count)).flat();
      expect(all).toHaveLength(files.length);
      expect(new Set(all).size).toBe(files.length);
    }
  });

  it('balances the integration time within the weight of the lightest file', () => {
    const total = (s: typeof files) =>
      s.reduce(
        (t, f) =>
          t + (f.project === 'unit' ? 0.2 : (WEIGHTS[f.path.split('/').pop()!.replace('.test.ts', '')] ?? 8)),
        0,
      );
    const [a, b] = [weightedShard(files, key, 1, 2), weightedShard(files, key, 2, 2)];
    expect(Math.abs(total(a) - total(b))).toBeLessThanOrEqual(8);
  });

  it('is the same split whatever order the files come in (each shard process computes it alone)', () => {
    const reversed = [...files].reverse();
    expect(weightedShard(reversed, key, 1, 2)).toEqual(weightedShard(files, key, 1, 2));
  });
});

describe('splitArgs', () => {
  it('gives reporter options to the merged report and everything else to the shards', () => {
    expect(
      splitArgs([
        '--reporter=default',
        '--reporter',
        'json',
        '--outputFile.json=.tmp/r.json',
        '--project',
        'integration',
        'test/integration/a.test.ts',
        '-t',
        'name',
      ]),
    ).toEqual({
      reporter: ['--reporter=default', '--reporter', 'json', '--outputFile.json=.tmp/r.json'],
      rest: ['--project', 'integration', 'test/integration/a.test.ts', '-t', 'name'],
    });
  });

  it('does not take a filter after a bare --reporter flag whose value is an option', () => {
    expect(splitArgs(['--reporter', '--bail=1'])).toEqual({ reporter: ['--reporter'], rest: ['--bail=1'] });
  });
});

describe('phases', () => {
  it('shards unit + integration and runs e2e alone afterwards; a named project runs only itself', () => {
    expect(phasesOf([])).toEqual({ sharded: ['unit', 'integration'], after: ['e2e'] });
    expect(phasesOf(['integration'])).toEqual({ sharded: ['integration'], after: [] });
    expect(phasesOf(['e2e'])).toEqual({ sharded: [], after: ['e2e'] });
  });

  it('takes both spellings of --project out of the arguments', () => {
    expect(splitProjects(['--project', 'unit', '--project=e2e', 'a.test.ts'])).toEqual({
      projects: ['unit', 'e2e'],
      rest: ['a.test.ts'],
    });
  });
});
