import { z } from 'zod';

/** Params of the hub → node `invoke` request. */
export const InvokeParams = z.object({
  command: z.string().min(1).max(128),
  params: z.unknown(),
  correlationId: z.string().min(1).max(64),
  /** ms since epoch when the hub issued the command. */
  issuedAt: z.number().int(),
  /** ms since epoch after which the node must not start (or must stop) the command. */
  deadline: z.number().int(),
});
export type InvokeParams = z.infer<typeof InvokeParams>;
