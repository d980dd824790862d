import { describe, expect, it } from 'vitest';
import { KubeApiError } from '../kube/errors.js';
import { ExitCode, fromApiError, InternalCliError } from './errors.js';

const api = (code: number, reason: string) =>
  new KubeApiError(code, reason, 'the server says no', 'POST', '/apis/x/v1/namespaces/a/things');

describe('fromApiError', () => {
  it('maps a spec the API server refuses (422) to a usage error, exit 2', () => {
    expect(fromApiError(api(422, 'Invalid'), 'create plan').exitCode).toBe(ExitCode.Usage);
  });
  it('maps 429 Too Many Requests to unavailable, exit 6', () => {
    expect(fromApiError(api(429, 'TooManyRequests'), 'get plan').exitCode).toBe(ExitCode.Unavailable);
  });
  it.each([
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    ['ETIMEDOUT', Object.assign(new Error('x'), { code: 'ETIMEDOUT' })],
    ['ENOTFOUND', Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), { code: 'ENOTFOUND' })],
    ['socket hang up', new Error('socket hang up')],
    ['request timeout', new Error('GET /api/v1: timed out after 30000 ms')],
  ])('maps a network error (%s) to unavailable, exit 6', (_, e) => {
    const c = fromApiError(e, 'get plan');
    expect(c.exitCode).toBe(ExitCode.Unavailable);
    expect(c.message).toContain('could not be reached');
  });
  it('reports a programming error as an internal error, exit 1, not as an unreachable cluster', () => {
    const c = fromApiError(new TypeError("Cannot read properties of undefined (reading 'x')"), 'status');
    expect(c).toBeInstanceOf(InternalCliError);
    expect(c.exitCode).toBe(ExitCode.Failed);
    expect(c.message).toContain('internal error');
    expect(c.message).not.toContain('could not be reached');
  });
});
