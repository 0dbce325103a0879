import { open } from 'node:fs/promises';
import { type FileReadParams, type FileReadResult, HiveError } from '@hive/protocol';
import { type Policy, resolvePolicyPath } from '../policy.js';

/** `file.read`: a regular file inside allowed_paths (realpath-checked), at most `files.max_read_bytes`. */
export async function fileRead(params: FileReadParams, policy: Policy): Promise<FileReadResult> {
  const { real } = await resolvePolicyPath(policy, params.path);
  const fh = await open(real, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EACCES' || err.code === 'EPERM') throw new HiveError('PERMISSION_DENIED', `${params.path}: the agent user may not read it`);
    if (err.code === 'ENOENT') throw new HiveError('NOT_FOUND', `${params.path}: no such file`);
    throw new HiveError('INTERNAL_ERROR', `${params.path}: ${err.message}`);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new HiveError('INVALID_PARAMETERS', `${params.path} is not a regular file`, { path: params.path });
    const cap = policy.config.files.max_read_bytes;
    const offset = Math.min(params.offset, st.size);
    const want = Math.min(params.length ?? cap, cap, st.size - offset);
    const buf = Buffer.alloc(want);
    const { bytesRead } = want > 0 ? await fh.read(buf, 0, want, offset) : { bytesRead: 0 };
    const data = buf.subarray(0, bytesRead);
    return {
      path: params.path,
      realPath: real,
      size: st.size,
      offset,
      bytes: bytesRead,
      encoding: params.encoding,
      content: data.toString(params.encoding === 'base64' ? 'base64' : 'utf8'),
      truncated: offset + bytesRead < st.size,
      mtime: st.mtime.toISOString(),
    };
  } finally {
    await fh.close();
  }
}
