import type { Command } from 'commander';
import { stub } from './stub.js';

export function register(program: Command) {
  stub(program, 'emergency', 'create a critical RollbackPlan and follow it to the end');
}
