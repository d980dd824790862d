import { describe, expect, it } from 'vitest';
import { chooseTestRestoreBackup, requestedBackup } from './test-restore-request.js';

const b = (id: string, finishedAt: string, verified = true, purpose?: 'safety' | 'scheduled') => ({
  id,
  startedAt: finishedAt,
  finishedAt,
  verified,
  ...(purpose ? { purpose } : {}),
});
const status = {
  backups: [
    b('safety-1', '2026-01-03T00:00:00Z', true, 'safety'),
    b('bad', '2026-01-02T00:00:00Z', false),
    b('good', '2026-01-01T00:00:00Z'),
  ],
};

describe('test-restore-now requests', () => {
  it.each([
    ['latest', 'latest'],
    ['latest@cli-1', 'latest'],
    ['good@again', 'good'],
    ['good', 'good'],
  ])('%s asks for %s', (value, wanted) => expect(requestedBackup(value)).toBe(wanted));

  it.each([
    ['latest', 'good'],
    ['latest@2', 'good'],
    ['bad@x', 'bad'],
    ['safety-1', 'safety-1'],
  ])('%s resolves to backup %s', (value, id) => {
    const r = chooseTestRestoreBackup(status, value);
    expect('backup' in r && r.backup.id).toBe(id);
  });

  it('refuses an id that is not recorded, naming the newest ones', () => {
    const r = chooseTestRestoreBackup(status, 'nope@1');
    expect(r).toMatchObject({ reason: 'BackupNotFound' });
    expect('message' in r && r.message).toContain('"nope"');
    expect('message' in r && r.message).toContain('good');
  });

  it('refuses latest when no verified non-safety backup exists', () => {
    const r = chooseTestRestoreBackup(
      { backups: [b('s', '2026-01-01T00:00:00Z', true, 'safety')] },
      'latest',
    );
    expect(r).toMatchObject({ reason: 'BackupNotFound' });
  });
});
