import { HiveError } from '@hive/protocol';
import { generateIdentity, HiveClient, type RequestHandler } from '@hive/sdk';

/** Token store in memory (for SDK nodes living in the test process). */
export function memTokens() {
  const m = new Map<string, string>();
  return {
    m,
    store: {
      get: async (r: string) => m.get(r),
      set: async (r: string, v?: string) => void (v ? m.set(r, v) : m.delete(r)),
      getHubKey: async () => m.get('hubKey'),
      setHubKey: async (v?: string) => void (v ? m.set('hubKey', v) : m.delete('hubKey')),
    },
  };
}

/** A default handler: answers system.info and echoes system.run argv like `echo`. */
export const echoHandler: RequestHandler = async (method, params) => {
  if (method !== 'invoke') throw new HiveError('UNKNOWN_METHOD', method);
  const p = params as { command: string; params: { argv?: string[] } };
  if (p.command === 'system.run') {
    return {
      exitCode: 0,
      signal: null,
      stdout: `${(p.params.argv ?? []).slice(1).join(' ')}\n`,
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      durationMs: 1,
    };
  }
  return { hostname: 'sim', ok: true };
};

/**
 * A satellite speaking the real protocol through the real SDK, inside the test process — for
 * fleet-sized tests where twenty agent processes would only measure process start-up.
 */
export async function simNode(wsUrl: string, name: string, opts: { tags?: string[]; handler?: RequestHandler; commands?: string[] } = {}) {
  const id = generateIdentity();
  const tokens = memTokens();
  const c = new HiveClient({
    url: wsUrl,
    role: 'node',
    identity: id,
    tokenStore: tokens.store,
    client: { name: 'sim-node', version: '0', hostname: name, displayName: name },
    commands: opts.commands ?? ['system.info', 'system.run'],
    ...(opts.tags ? { tags: opts.tags } : {}),
    onRequest: opts.handler ?? echoHandler,
    backoff: { baseMs: 50, maxMs: 500, restartSpreadMs: 200 },
  });
  const hello = await c.start();
  return { id, client: c, hello, tokens };
}
