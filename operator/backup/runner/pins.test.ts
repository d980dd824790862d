import { describe, expect, it } from 'vitest';
import {
  isPinLive,
  PIN_MAX_TTL_MS,
  PIN_TTL_MS,
  pinExpiry,
  planPinFromEnv,
  readPinFromEnv,
  type StoredPin,
} from './pins.js';

const t0 = new Date('2026-03-15T12:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

function stored(expiresInMs: number | undefined, writtenAt = t0): StoredPin {
  return {
    id: 'b1',
    holder: 'uid-1',
    modifiedAt: writtenAt,
    ...(expiresInMs === undefined
      ? {}
      : {
          pin: {
            pinVersion: 1,
            id: 'b1',
            holder: 'uid-1',
            createdAt: writtenAt.toISOString(),
            expiresAt: at(expiresInMs).toISOString(),
          },
        }),
  };
}

describe('pinExpiry', () => {
  it('holds until the pin expires, and not a moment longer', () => {
    const p = stored(60_000);
    expect(isPinLive(p, at(59_999))).toBe(true);
    expect(isPinLive(p, at(60_000))).toBe(false);
  });

  it('bounds a pin that claims to hold for a year', () => {
    expect(pinExpiry(stored(365 * 86_400_000)).getTime()).toBe(t0.getTime() + PIN_MAX_TTL_MS);
  });

  it('treats an unreadable pin file as a pin of the default lifetime from when it was written', () => {
    const p = stored(undefined);
    expect(isPinLive(p, at(PIN_TTL_MS - 1)), 'expected an unknown pin to hold').toBe(true);
    expect(isPinLive(p, at(PIN_TTL_MS)), 'expected an unknown pin to expire').toBe(false);
  });
});

describe('planPinFromEnv', () => {
  it('is undefined outside a plan', () => {
    expect(planPinFromEnv({}, 'b1', t0)).toBeUndefined();
  });

  it('names the plan and expires after the default lifetime', () => {
    const uid = '0f8e5b8a-2d4c-4c1e-9a51-6f0c2f1d9b7e';
    expect(
      planPinFromEnv({ NXT_PLAN_UID: uid, NXT_PLAN_NAME: 'undo', NXT_JOB_NAME: 'undo-verify' }, 'b1', t0),
    ).toEqual({
      pinVersion: 1,
      id: 'b1',
      holder: uid,
      plan: { name: 'undo', uid },
      job: 'undo-verify',
      createdAt: t0.toISOString(),
      expiresAt: at(PIN_TTL_MS).toISOString(),
    });
  });

  it('refuses a UID that cannot be part of a file name', () => {
    expect(() => planPinFromEnv({ NXT_PLAN_UID: '../../etc' }, 'b1', t0)).toThrow(/NXT_PLAN_UID/);
  });
});

describe('readPinFromEnv', () => {
  it("holds the plan's pin on a plan Job, the Job's own otherwise, the process's when started by hand", () => {
    expect(readPinFromEnv({ NXT_PLAN_UID: 'plan-uid', NXT_JOB_UID: 'job-uid' }, 'b1', t0)).toMatchObject({
      plan: true,
      pin: { holder: 'plan-uid' },
    });
    expect(readPinFromEnv({ NXT_JOB_UID: 'Job-UID-1', NXT_JOB_NAME: 'tr-1' }, 'b1', t0)).toEqual({
      plan: false,
      pin: {
        pinVersion: 1,
        id: 'b1',
        holder: 'job-uid-1',
        job: 'tr-1',
        createdAt: t0.toISOString(),
        expiresAt: at(PIN_TTL_MS).toISOString(),
      },
    });
    expect(readPinFromEnv({}, 'b1', t0, () => 'abc123')).toMatchObject({
      plan: false,
      pin: { holder: 'run-abc123' },
    });
    expect(readPinFromEnv({ NXT_JOB_UID: 'not a uid' }, 'b1', t0, () => 'f00')).toMatchObject({
      pin: { holder: 'run-f00' },
    });
  });
});
