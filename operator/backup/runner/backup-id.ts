/**
 * Backup ids are chosen by the caller and deterministic (`<schedule>-<yyyymmddhhmmss>`), so a retried Job
 * finds the files its first attempt wrote. They become file names and object keys, hence the strict shape:
 * lower-case DNS-label characters, no dots, no path separators.
 */
export const BACKUP_ID_PATTERN = /^[a-z0-9]([a-z0-9-]{0,251}[a-z0-9])?$/;

/**
 * What `--id` of verify, restore and test-restore may say instead of an id: the newest backup whose manifest
 * says it is verified. Reserved, so no backup can ever be stored under this name.
 */
export const LATEST_BACKUP_ID = 'latest';

export class InvalidBackupIdError extends Error {
  constructor(
    readonly id: string,
    detail: string,
  ) {
    super(`invalid backup id ${JSON.stringify(id.slice(0, 80))}: ${detail}`);
    this.name = 'InvalidBackupIdError';
  }
}

/**
 * Returns the id unchanged when it is safe as a file name and not reserved; throws InvalidBackupIdError
 * otherwise.
 */
export function validateBackupId(id: string): string {
  if (id.length === 0) throw new InvalidBackupIdError(id, 'it is empty');
  if (id.includes('/') || id.includes('\\') || id.includes('..')) {
    throw new InvalidBackupIdError(id, 'it must not contain path separators or ".."');
  }
  if (!BACKUP_ID_PATTERN.test(id)) {
    throw new InvalidBackupIdError(
      id,
      'use 1-253 lower-case letters, digits and "-", starting and ending with a letter or digit',
    );
  }
  if (id === LATEST_BACKUP_ID) {
    throw new InvalidBackupIdError(
      id,
      `"${LATEST_BACKUP_ID}" is reserved: it means the newest verified backup`,
    );
  }
  return id;
}
