import { z } from 'zod';

/** A lifetime like `90m`, `12h`, `30d` (API keys, AI tokens). */
export const ExpiresIn = z.string().regex(/^\d+(m|h|d)$/, 'e.g. 30d, 12h, 90m');

export const expiresInMs = (s: string): number => Number(s.slice(0, -1)) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[s.slice(-1) as 'm'];
