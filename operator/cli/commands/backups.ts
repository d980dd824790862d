import type { Command } from 'commander';
import { stub } from './stub.js';

/** backup now, backups list, backups verify. */
export function register(program: Command) {
  stub(program, 'backup', 'take a backup now');
  stub(program, 'backups', 'list or verify backups');
}
