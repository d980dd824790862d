import { describe, expect, it } from 'vitest';
import { e2eSkipRefusal } from '../e2e/global-setup.js';

describe('the e2e global setup in CI', () => {
  it('refuses to skip the e2e suite when CI=true, and skips with the reason elsewhere', () => {
    const reason = 'a real node needs root (containerd, runc, mounts, cgroups)';
    expect(e2eSkipRefusal(reason, { CI: 'true' })).toMatch(
      /CI=true but the e2e suite cannot run.*needs root/,
    );
    expect(e2eSkipRefusal(reason, {})).toBeUndefined();
    expect(e2eSkipRefusal(reason, { CI: 'false' })).toBeUndefined();
    expect(e2eSkipRefusal(undefined, { CI: 'true' })).toBeUndefined();
  });
});
