import type { Command } from 'commander';
import { stub } from './stub.js';

export function register(program: Command) {
  stub(program, 'readiness', 'the deployment readiness checklist, from live state');
}
