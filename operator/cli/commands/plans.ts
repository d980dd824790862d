import type { Command } from 'commander';
import { stub } from './stub.js';

/** status, history, approve, veto. */
export function register(program: Command) {
  stub(program, 'status', 'show a RollbackPlan (or the active ones)');
  stub(program, 'history', 'recent RollbackPlans: trigger, result, duration, RTO met');
  stub(program, 'approve', 'approve a RollbackPlan waiting for approval');
  stub(program, 'veto', 'veto a RollbackPlan');
}
