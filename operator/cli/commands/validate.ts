import type { Command } from 'commander';
import { stub } from './stub.js';

export function register(program: Command) {
  stub(program, 'validate', "run a plan's pre- or post-validation checks on their own");
}
