import { describe, expect, it } from 'vitest';
import { KubeApiError, userFixableRejection } from './errors.js';

const apiError = (code: number, reason: string, message = 'm') =>
  new KubeApiError(code, reason, message, 'PATCH', '/apis/batch/v1/namespaces/n/cronjobs/c');

describe('userFixableRejection', () => {
  it.each([
    [400, 'BadRequest', true],
    [413, 'RequestEntityTooLarge', true],
    [422, 'Invalid', true],
    [403, 'Forbidden', false],
  ])('a %i (%s) is the user to fix (permanent: %s)', (code, reason, permanent) => {
    const r = userFixableRejection(apiError(code, reason, 'spec.schedule: Invalid value: "61 * * * *"'));
    expect(r).toEqual({ code, reason, message: 'spec.schedule: Invalid value: "61 * * * *"', permanent });
  });

  it.each([
    [401, 'Unauthorized'],
    [404, 'NotFound'],
    [408, 'Timeout'],
    [409, 'Conflict'],
    [409, 'AlreadyExists'],
    [410, 'Gone'],
    [429, 'TooManyRequests'],
    [500, 'InternalError'],
    [503, 'ServiceUnavailable'],
    [504, 'Timeout'],
  ])('a %i (%s) is transient: retried', (code, reason) => {
    expect(userFixableRejection(apiError(code, reason))).toBeUndefined();
  });

  it('treats errors without a status code (network, timeouts) as transient', () => {
    expect(userFixableRejection(new Error('ECONNRESET'))).toBeUndefined();
    expect(
      userFixableRejection(Object.assign(new Error('aborted'), { name: 'TimeoutError' })),
    ).toBeUndefined();
  });

  it('carries only the server message, bounded', () => {
    const r = userFixableRejection(apiError(422, 'Invalid', 'x'.repeat(5000)));
    expect(r!.message).toHaveLength(1024);
    expect(r!.message.endsWith('...')).toBe(true);
    expect(r!.message).not.toContain('PATCH');
  });
});
