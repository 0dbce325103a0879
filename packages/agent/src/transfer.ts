import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { HiveError } from '@hive/protocol';
import type { RequestContext } from '@hive/sdk';
import { z } from 'zod';
import type { AgentLog } from './commands/index.js';
import { commandRefusal, type Policy, resolvePolicyPath } from './policy.js';

/** `file.push`: the hub streams a file to this node (gated like file.write). */
export const FilePushParams = z
  .object({
    path: z.string().min(1).max(4096),
    size: z.number().int().min(0),
    stream_id: z.number().int().min(1).max(0xffffffff),
    mode: z.enum(['overwrite', 'create']).default('overwrite'),
  })
  .strict();

/** `file.pull`: this node streams a file to the hub (gated like file.read). */
export const FilePullParams = z.object({ path: z.string().min(1).max(4096), stream_id: z.number().int().min(1).max(0xffffffff) }).strict();

function fsError(p: string, err: unknown): HiveError {
  if (err instanceof HiveError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new HiveError('PERMISSION_DENIED', `${p}: the agent user may not access it (${code})`);
  if (code === 'ENOENT') return new HiveError('NOT_FOUND', `${p}: no such file`);
  if (code === 'ENOSPC' || code === 'EDQUOT') return new HiveError('INSUFFICIENT_RESOURCES', `${p}: no space left (${code})`);
  return new HiveError('INTERNAL_ERROR', `${p}: ${(err as Error).message}`);
}

/**
 * Receives a pushed file: bytes go to an exclusive temp file next to the target, hashed on the
 * way; only when the stream closes with the sender's `sha256:<hex>` and size and hash match is the
 * temp file fsynced and renamed over the target. Anything else removes the temp file, so a
 * partial transfer never leaves a truncated file.
 */
export async function filePush(raw: unknown, policy: Policy, req: Partial<RequestContext>, log: AgentLog) {
  const refusal = commandRefusal(policy.config, 'file.write');
  if (refusal) throw new HiveError('PERMISSION_DENIED', refusal, { command: 'file.write' });
  const parsed = FilePushParams.safeParse(raw);
  if (!parsed.success) throw new HiveError('INVALID_PARAMETERS', 'Invalid params for file.push');
  const p = parsed.data;
  const cap = policy.config.files.max_transfer_bytes;
  if (p.size > cap) throw new HiveError('INVALID_PARAMETERS', `file is ${p.size} bytes; this satellite accepts at most ${cap}`);
  if (!req.acceptStream) throw new HiveError('INTERNAL_ERROR', 'This connection cannot carry streams');
  const { real, exists } = await resolvePolicyPath(policy, p.path, { forWrite: true });
  const old = exists ? await stat(real) : undefined;
  if (old && !old.isFile()) throw new HiveError('INVALID_PARAMETERS', `${p.path} exists and is not a regular file`);
  if (old && p.mode === 'create') throw new HiveError('CONFLICT', `${p.path} already exists`, { path: p.path });
  const tmp = path.join(path.dirname(real), `.${path.basename(real)}.hive-${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600).catch((err) => {
    throw fsError(p.path, err);
  });
  const hash = createHash('sha256');
  let bytes = 0;
  let chain: Promise<unknown> = Promise.resolve();
  let failed: HiveError | undefined;
  const acceptStream = req.acceptStream;
  const done = new Promise<{ reason: string; aborted: boolean }>((resolve) => {
    const stream = acceptStream(
      p.stream_id,
      {
        onData: (chunk) => {
          bytes += chunk.length;
          if (bytes > p.size) {
            failed ??= new HiveError('INVALID_PARAMETERS', `more than the announced ${p.size} bytes`);
            stream.abort('size exceeded');
            return;
          }
          hash.update(chunk);
          const copy = Buffer.from(chunk);
          // Credit goes back only once the bytes are on disk: a slow disk slows the sender.
          chain = chain.then(async () => {
            if (failed) return;
            try {
              await fh.write(copy);
            } catch (err) {
              failed = fsError(p.path, err);
              stream.abort(failed.message);
              return;
            }
            stream.consumed(copy.length);
          });
        },
        onClose: (info) => resolve(info),
      },
      { manualCredit: true },
    );
    req.signal?.addEventListener('abort', () => stream.abort('cancelled'), { once: true });
  });
  const closed = await done;
  await chain;
  const digest = hash.digest('hex');
  try {
    if (failed) throw failed;
    if (closed.aborted) throw new HiveError('INTERNAL_ERROR', `transfer aborted: ${closed.reason}`);
    const expected = /^sha256:([0-9a-f]{64})$/.exec(closed.reason)?.[1];
    if (bytes !== p.size) throw new HiveError('INVALID_PARAMETERS', `received ${bytes} of ${p.size} bytes`);
    if (!expected || expected !== digest) throw new HiveError('INVALID_PARAMETERS', `checksum mismatch (sender ${expected ?? 'none'}, received ${digest})`);
    await fh.sync();
    await fh.close();
    await chmod(tmp, old ? old.mode & 0o7777 : 0o644);
    if (p.mode === 'create') {
      await link(tmp, real).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') throw new HiveError('CONFLICT', `${p.path} already exists`, { path: p.path });
        throw err;
      });
      await unlink(tmp);
    } else {
      await rename(tmp, real);
    }
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    log('warn', 'file push failed', { path: p.path, error: (err as Error).message });
    throw fsError(p.path, err);
  }
  log('info', 'file pushed', { path: p.path, bytes, sha256: digest });
  return { path: p.path, realPath: real, bytes, sha256: digest, created: !old };
}

/** Hashes the file, then streams it (paced by the hub's credit) and closes with `sha256:<hex>`. */
export async function filePull(raw: unknown, policy: Policy, req: Partial<RequestContext>, log: AgentLog) {
  const refusal = commandRefusal(policy.config, 'file.read');
  if (refusal) throw new HiveError('PERMISSION_DENIED', refusal, { command: 'file.read' });
  const parsed = FilePullParams.safeParse(raw);
  if (!parsed.success) throw new HiveError('INVALID_PARAMETERS', 'Invalid params for file.pull');
  const p = parsed.data;
  if (!req.acceptStream) throw new HiveError('INTERNAL_ERROR', 'This connection cannot carry streams');
  const { real } = await resolvePolicyPath(policy, p.path);
  const st = await stat(real).catch((err) => {
    throw fsError(p.path, err);
  });
  if (!st.isFile()) throw new HiveError('INVALID_PARAMETERS', `${p.path} is not a regular file`);
  const cap = policy.config.files.max_transfer_bytes;
  if (st.size > cap) throw new HiveError('INVALID_PARAMETERS', `${p.path} is ${st.size} bytes; this satellite sends at most ${cap}`);
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(real)
      .on('data', (c) => hash.update(c))
      .on('end', () => resolve())
      .on('error', (err) => reject(fsError(p.path, err)));
  });
  const digest = hash.digest('hex');
  const file = createReadStream(real, { highWaterMark: 64 * 1024 });
  const stream = req.acceptStream(p.stream_id, {
    onDrain: () => file.resume(),
    onClose: ({ aborted }) => {
      if (aborted) file.destroy();
    },
  });
  let sent = 0;
  file.on('data', (c) => {
    sent += (c as Buffer).length;
    if (!stream.write(c as Buffer)) file.pause();
  });
  file.on('end', () => {
    // A file that changed while being sent fails the receiver's check instead of passing silently.
    stream.end(sent === st.size ? `sha256:${digest}` : 'sha256:changed-while-sending');
    log('info', 'file pulled', { path: p.path, bytes: sent });
  });
  file.on('error', (err) => stream.abort(`read failed: ${err.message}`));
  return { path: p.path, realPath: real, size: st.size, sha256: digest, mtime: st.mtime.toISOString() };
}
