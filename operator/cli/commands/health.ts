import type { Command } from 'commander';
import { stub } from './stub.js';

export function register(program: Command) {
  stub(program, 'health', 'targets, backups, RPO/RTO and operator state in one screen');
}
