import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TERMINATION_LOG,
  findTerminationLog,
  parseRunnerArgs,
  UsageError,
  USAGE,
} from './cli-args.js';

describe('parseRunnerArgs', () => {
  it('parses backup with the default termination log', () => {
    expect(
      parseRunnerArgs(['backup', '--storage-dir', '/backups', '--id', 'nightly-20260301020000']),
    ).toEqual({
      command: 'backup',
      storageDir: '/backups',
      id: 'nightly-20260301020000',
      terminationLog: DEFAULT_TERMINATION_LOG,
    });
  });

  it("parses an S3 location instead of a directory, and prune's leftover age", () => {
    expect(parseRunnerArgs(['verify', '--storage-url', 's3://backups/prod', '--id', 'latest'])).toEqual({
      command: 'verify',
      storageUrl: 's3://backups/prod',
      id: 'latest',
      terminationLog: DEFAULT_TERMINATION_LOG,
    });
    expect(
      parseRunnerArgs([
        'prune',
        '--storage-url',
        's3://b-1',
        '--keep-last',
        '2',
        '--leftovers-older-than-seconds',
        '0',
      ]),
    ).toMatchObject({ command: 'prune', storageUrl: 's3://b-1', leftoversOlderThanSeconds: 0 });
  });

  it('parses probe-storage, which takes an S3 location only', () => {
    expect(parseRunnerArgs(['probe-storage', '--storage-url', 's3://backups/prod'])).toEqual({
      command: 'probe-storage',
      storageUrl: 's3://backups/prod',
      terminationLog: DEFAULT_TERMINATION_LOG,
    });
    expect(() => parseRunnerArgs(['probe-storage', '--storage-dir', '/b'])).toThrow(UsageError);
    expect(() => parseRunnerArgs(['probe-storage', '--storage-url', 's3://b/p', '--id', 'x'])).toThrow(
      /Unknown option '--id'/,
    );
  });

  it('parses restore with mode, assertions and naming options', () => {
    const args = parseRunnerArgs([
      'restore',
      '--storage-dir=/b',
      '--id=x1',
      '--mode=newDatabaseSwap',
      '--sql-assertions-json',
      '[{"name":"orders","query":"select count(*) from orders","expect":"10"}]',
      '--short-id',
      'abc123',
      '--termination-log',
      '/tmp/t',
    ]);
    expect(args).toMatchObject({
      command: 'restore',
      mode: 'newDatabaseSwap',
      shortId: 'abc123',
      terminationLog: '/tmp/t',
      sqlAssertions: [{ name: 'orders', query: 'select count(*) from orders', expect: '10' }],
    });
  });

  it('parses --keep-previous-databases of restore, 0 included, and bounds it', () => {
    const base = ['restore', '--storage-dir', '/b', '--id', 'x1', '--mode', 'newDatabaseSwap'];
    expect(parseRunnerArgs([...base, '--keep-previous-databases', '0'])).toMatchObject({
      keepPreviousDatabases: 0,
    });
    expect(parseRunnerArgs(base)).not.toHaveProperty('keepPreviousDatabases');
    expect(() => parseRunnerArgs([...base, '--keep-previous-databases', '11'])).toThrow(/at most 10/);
    expect(() => parseRunnerArgs([...base, '--keep-previous-databases', '-1'])).toThrow(UsageError);
  });

  it('parses the retention flags of backup like those of prune', () => {
    expect(
      parseRunnerArgs([
        'backup',
        '--storage-dir',
        '/b',
        '--id',
        'n-1',
        '--keep-last',
        '2',
        '--keep-weekly=4',
      ]),
    ).toEqual({
      command: 'backup',
      storageDir: '/b',
      id: 'n-1',
      terminationLog: DEFAULT_TERMINATION_LOG,
      policy: { keepLast: 2, keepDaily: undefined, keepWeekly: 4 },
    });
    expect(
      parseRunnerArgs(['backup', '--storage-dir', '/b', '--id', 'n-1', '--keep-daily', '0']),
      'expected an explicit 0 to be a rule',
    ).toMatchObject({ policy: { keepDaily: 0 } });
  });

  it('gives backup no policy without any --keep flag, so nothing is pruned', () => {
    expect(parseRunnerArgs(['backup', '--storage-dir', '/b', '--id', 'n-1'])).not.toHaveProperty('policy');
  });

  it.each(['verify', 'test-restore'])(
    'accepts --id latest for %s and leaves it to be resolved',
    (command) => {
      expect(parseRunnerArgs([command, '--storage-dir', '/b', '--id', 'latest'])).toMatchObject({
        command,
        id: 'latest',
      });
    },
  );

  it('accepts --id latest for restore', () => {
    expect(
      parseRunnerArgs(['restore', '--storage-dir', '/b', '--id=latest', '--mode', 'inPlace']),
    ).toMatchObject({ command: 'restore', id: 'latest', mode: 'inPlace' });
  });

  it('falls back to TERMINATION_LOG_PATH, then /dev/termination-log, when --termination-log is absent', () => {
    const argv = ['verify', '--storage-dir', '/b', '--id', 'x'];
    expect(parseRunnerArgs(argv, { TERMINATION_LOG_PATH: '/tmp/from-env' }).terminationLog).toBe(
      '/tmp/from-env',
    );
    expect(parseRunnerArgs(argv, { TERMINATION_LOG_PATH: '' }).terminationLog).toBe(DEFAULT_TERMINATION_LOG);
    expect(parseRunnerArgs(argv, {}).terminationLog).toBe('/dev/termination-log');
    expect(
      parseRunnerArgs([...argv, '--termination-log', '/tmp/flag'], { TERMINATION_LOG_PATH: '/tmp/from-env' })
        .terminationLog,
      'expected the flag to win over the env',
    ).toBe('/tmp/flag');
  });

  it('documents the new flags in USAGE', () => {
    expect(USAGE).toMatch(
      /backup +--storage-dir DIR --id ID \[--keep-last N\] \[--keep-daily N\] \[--keep-weekly N\]/,
    );
    expect(USAGE).toMatch(/verify +--storage-dir DIR --id ID\|latest/);
    expect(USAGE).toMatch(/restore +--storage-dir DIR --id ID\|latest/);
    expect(USAGE).toMatch(/test-restore +--storage-dir DIR --id ID\|latest/);
    expect(USAGE).toContain('TERMINATION_LOG_PATH');
  });

  it('parses prune counts and leaves unset rules undefined', () => {
    expect(parseRunnerArgs(['prune', '--storage-dir', '/b', '--keep-last', '3', '--dry-run'])).toMatchObject({
      policy: { keepLast: 3, keepDaily: undefined, keepWeekly: undefined },
      dryRun: true,
    });
  });

  it.each([
    [['nope'], /unknown command/],
    [[], /unknown command/],
    [['backup', '--id', 'x'], /backup needs --storage-dir DIR or --storage-url/],
    [['verify', '--storage-dir', '/b', '--storage-url', 's3://b/p', '--id', 'x'], /exactly one/],
    [['verify', '--storage-dir', '/b'], /verify needs --id/],
    [['backup', '--storage-dir', '/b', '--id', '../etc'], /invalid backup id/],
    [['backup', '--storage-dir', '/b', '--id', 'x', '--password', 'pw'], /Unknown option '--password'/],
    [['restore', '--storage-dir', '/b', '--id', 'x'], /restore needs --mode/],
    [
      ['restore', '--storage-dir', '/b', '--id', 'x', '--mode', 'overwrite'],
      /--mode must be inPlace or newDatabaseSwap/,
    ],
    [
      ['restore', '--storage-dir', '/b', '--id', 'x', '--mode', 'inPlace', '--sql-assertions-json', '{'],
      /not JSON/,
    ],
    [
      ['test-restore', '--storage-dir', '/b', '--id', 'x', '--sql-assertions-json', '[{"name":"a"}]'],
      /at 0.query/,
    ],
    [
      ['test-restore', '--storage-dir', '/b', '--id', 'x', '--sql-assertions-json', '{"name":"a"}'],
      /at \(root\): expected an array/,
    ],
    [
      [
        'test-restore',
        '--storage-dir',
        '/b',
        '--id',
        'x',
        '--sql-assertions-json',
        '[{"name":"a","query":"select 1","expect":"1"},{"name":"","query":"q","expect":""}]',
      ],
      /at 1.name: must not be empty/,
    ],
    [['test-restore', '--storage-dir', '/b', '--id', 'x', '--short-id', 'A/B'], /--short-id/],
    [
      ['restore', '--storage-dir', '/b', '--id', 'x', '--mode', 'inPlace', '--short-id', '2024'],
      /6 lower-case hex/,
    ],
    [['prune', '--storage-dir', '/b', '--keep-last=-1'], /--keep-last must be a whole number/],
    [['backup', '--storage-dir', '/b', '--id', 'x', '--keep-last=-1'], /--keep-last must be a whole number/],
    [
      ['backup', '--storage-dir', '/b', '--id', 'x', '--keep-daily', '1.5'],
      /--keep-daily must be a whole number/,
    ],
    [
      ['backup', '--storage-dir', '/b', '--id', 'x', '--keep-weekly', 'two'],
      /--keep-weekly must be a whole number/,
    ],
    [['backup', '--storage-dir', '/b', '--id', 'latest'], /"latest" is reserved/],
    [['verify', '--storage-dir', '/b', '--id', 'Latest'], /invalid backup id/],
    [['verify', '--storage-dir', '/b', '--id', 'x', '--keep-last', '1'], /Unknown option '--keep-last'/],
    [['verify', '--storage-dir', '/b', '--id', 'x', '--termination-log='], /--termination-log needs a path/],
  ])('rejects %j with a message naming the problem', (argv, message) => {
    expect(() => parseRunnerArgs(argv)).toThrow(UsageError);
    expect(() => parseRunnerArgs(argv)).toThrow(message);
  });
});

describe('findTerminationLog', () => {
  it('finds the path even in an invocation that does not parse', () => {
    expect(findTerminationLog(['backup', '--bogus', '--termination-log', '/tmp/a'])).toBe('/tmp/a');
    expect(findTerminationLog(['x', '--termination-log=/tmp/b'])).toBe('/tmp/b');
    expect(findTerminationLog(['backup'])).toBe(DEFAULT_TERMINATION_LOG);
  });

  it('falls back to TERMINATION_LOG_PATH when the flag is absent or empty', () => {
    const env = { TERMINATION_LOG_PATH: '/tmp/env' };
    expect(findTerminationLog(['backup', '--bogus'], env)).toBe('/tmp/env');
    expect(findTerminationLog(['backup', '--termination-log='], env)).toBe('/tmp/env');
    expect(findTerminationLog(['backup', '--termination-log', '/tmp/a'], env)).toBe('/tmp/a');
    expect(findTerminationLog(['backup'], { TERMINATION_LOG_PATH: '' })).toBe(DEFAULT_TERMINATION_LOG);
  });
});
