// What the backup and validate commands share: a unique value per request, sizes for tables.
import { randomBytes } from 'node:crypto';

/**
 * A value no one used before, for an annotation that acts once per new value (backup-now, test-restore-now)
 * or a generated object name: `cli-20261129t115300z-1a2b3c` (lower case, so it also fits a name).
 */
export function uniqueRequestValue(prefix = 'cli', now = new Date()): string {
  const t = now
    .toISOString()
    .replace(/\.\d+Z$/, 'z')
    .replace(/[-:]/g, '')
    .toLowerCase();
  return `${prefix}-${t}-${randomBytes(3).toString('hex')}`;
}

/** 1536 → "1.5KiB": sizes in tables. */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}B` : `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}
