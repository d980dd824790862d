import { describe, expect, it } from 'vitest';
import { parseSourceId, sourceId } from './source-watch.js';

describe('source ids (status.gitops.owners[].source)', () => {
  it('round-trips kind and namespace, and refuses anything else', () => {
    expect(parseSourceId(sourceId('GitRepository', 'flux-system', 'app'))).toEqual({
      kind: 'GitRepository',
      namespace: 'flux-system',
    });
    expect(parseSourceId('Application argocd/shop')).toEqual({ kind: 'Application', namespace: 'argocd' });
    expect(parseSourceId(undefined)).toBeUndefined();
    expect(parseSourceId('GitRepository flux-system')).toBeUndefined();
  });
});
