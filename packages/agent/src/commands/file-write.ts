import { createHash, randomBytes } from 'node:crypto';
import { chmod, link, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type FileWriteParams, type FileWriteResult, HiveError } from '@hive/protocol';
import { type Policy, resolvePolicyPath } from '../policy.js';

/**
 * `file.write`: inside allowed_paths only, atomically: the bytes go to a temp file in the target's
 * directory (created exclusively), are fsynced, then renamed over the target — or, for
 * `mode: create`, hard-linked to it so an existing file is never replaced.
 */
export async function fileWrite(params: FileWriteParams, policy: Policy): Promise<FileWriteResult> {
  const data = Buffer.from(params.content, params.encoding === 'base64' ? 'base64' : 'utf8');
  const cap = policy.config.files.max_write_bytes;
  if (data.length > cap) throw new HiveError('INVALID_PARAMETERS', `content is ${data.length} bytes; this satellite accepts at most ${cap}`);
  const { real, exists } = await resolvePolicyPath(policy, params.path, { forWrite: true });
  const old = exists ? await stat(real) : undefined;
  if (old && !old.isFile()) throw new HiveError('INVALID_PARAMETERS', `${params.path} exists and is not a regular file`);
  if (old && params.mode === 'create') throw new HiveError('CONFLICT', `${params.path} already exists`, { path: params.path });
  const mode = params.fileMode ? Number.parseInt(params.fileMode, 8) : old ? old.mode & 0o7777 : 0o644;
  const dir = path.dirname(real);
  const tmp = path.join(dir, `.${path.basename(real)}.hive-${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, mode);
    if (params.mode === 'create') {
      await link(tmp, real).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') throw new HiveError('CONFLICT', `${params.path} already exists`, { path: params.path });
        throw err;
      });
      await unlink(tmp);
    } else {
      await rename(tmp, real);
    }
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if (err instanceof HiveError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
      throw new HiveError('PERMISSION_DENIED', `${params.path}: the agent user may not write here (${code})`);
    if (code === 'ENOSPC' || code === 'EDQUOT') throw new HiveError('INSUFFICIENT_RESOURCES', `${params.path}: no space left (${code})`);
    throw new HiveError('INTERNAL_ERROR', `${params.path}: ${(err as Error).message}`);
  }
  return { path: params.path, realPath: real, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), created: !old };
}
