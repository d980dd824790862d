import { describe, expect, it } from 'vitest';
import { mergePatchFor } from './status.js';

/** RFC 7386, as the API server applies a merge patch. */
function applyMergePatch(target: any, patch: any): any {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: any = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

describe('mergePatchFor', () => {
  const before = {
    observedGeneration: 1,
    lastSuccessfulBackup: { id: 'a', finishedAt: 't1', bytes: 10, sha256: 'x' },
    lastTestRestoreNow: { annotationValue: 'v1', jobName: 'j1', backupId: 'a' },
    conditions: [{ type: 'Ready', status: 'True' }],
  };

  it('turns before into after when the API server merges it, replaced objects included', () => {
    const after = {
      observedGeneration: 2,
      lastSuccessfulBackup: { id: 'b', finishedAt: 't2' },
      lastTestRestoreNow: { annotationValue: 'v2', message: 'refused' },
      conditions: [{ type: 'Ready', status: 'False' }],
    };
    const patch = mergePatchFor(before, after);
    expect(applyMergePatch(before, patch)).toEqual(after);
    expect(patch).toEqual({
      observedGeneration: 2,
      lastSuccessfulBackup: { id: 'b', finishedAt: 't2', bytes: null, sha256: null },
      lastTestRestoreNow: { annotationValue: 'v2', message: 'refused', jobName: null, backupId: null },
      conditions: [{ type: 'Ready', status: 'False' }],
    });
  });

  it('sends only what changed, and removes keys the new status lacks', () => {
    const { lastTestRestoreNow: _gone, ...after } = { ...before, observedGeneration: 2 };
    expect(mergePatchFor(before, after)).toEqual({ observedGeneration: 2, lastTestRestoreNow: null });
  });
});
