import { describe, expect, it } from 'vitest';
import { InvalidBackupIdError, validateBackupId } from './backup-id.js';

describe('validateBackupId', () => {
  it.each(['nightly-20260101020304', 'a', 'db1-backup-2', 'x'.repeat(253), 'latest-1', 'the-latest'])(
    'accepts %s',
    (id) => {
      expect(validateBackupId(id), `expected ${id} to be accepted unchanged`).toBe(id);
    },
  );

  it.each([
    ['', 'empty'],
    ['..', 'parent directory'],
    ['../etc/passwd', 'path traversal'],
    ['a/b', 'slash'],
    ['a\\b', 'backslash'],
    ['a..b', 'double dot'],
    ['a.b', 'dot'],
    ['Nightly', 'upper case'],
    ['-leading', 'leading dash'],
    ['trailing-', 'trailing dash'],
    ['with space', 'space'],
    ['x'.repeat(254), 'longer than 253'],
    ['abc\n', 'newline'],
    ['latest', 'reserved for the newest verified backup'],
  ])('rejects %j (%s)', (id) => {
    expect(() => validateBackupId(id), `expected ${JSON.stringify(id)} to be rejected`).toThrow(
      InvalidBackupIdError,
    );
  });
});
