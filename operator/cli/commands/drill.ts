import type { Command } from 'commander';
import { stub } from './stub.js';

export function register(program: Command) {
  stub(program, 'drill', 'a rollback drill in a scratch namespace');
}
