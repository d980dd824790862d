import type { AlertMatcher } from '../api/v1alpha1/rollbackplan.js';
import type { AlertSource, StoredAlert } from './types.js';

/** Firing alerts received from Alertmanager, kept in memory. Placeholder until the receiver exists. */
export class AlertStore implements AlertSource {
  private readonly listeners = new Set<() => void>();

  firingMatching(_matchers: readonly AlertMatcher[], _notBefore: Date): StoredAlert | undefined {
    return undefined;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
