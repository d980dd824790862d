import { z } from 'zod';
import { PIN_HOLDER_PATTERN } from './pins.js';

// Apart from pins.ts so that a runner loads zod only when it reads a pin file (see termination-message.ts).
export const BackupPinSchema = z.object({
  pinVersion: z.literal(1),
  id: z.string(),
  /** One pin per holder and backup: the plan's UID. */
  holder: z.string().regex(PIN_HOLDER_PATTERN),
  plan: z.object({ name: z.string(), uid: z.string() }).optional(),
  /** The Job that wrote or last renewed it. */
  job: z.string().optional(),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
});
export type BackupPin = z.infer<typeof BackupPinSchema>;
