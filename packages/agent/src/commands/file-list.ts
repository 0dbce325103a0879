import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { type FileListParams, type FileListResult, HiveError } from '@hive/protocol';
import { type Policy, resolvePolicyPath } from '../policy.js';

/** `file.list`: one directory inside allowed_paths; entries are not followed (symlinks show as such). */
export async function fileList(params: FileListParams, policy: Policy): Promise<FileListResult> {
  const { real } = await resolvePolicyPath(policy, params.path);
  let names: string[];
  try {
    names = (await readdir(real)).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new HiveError('INVALID_PARAMETERS', `${params.path} is not a directory`);
    if (code === 'EACCES' || code === 'EPERM') throw new HiveError('PERMISSION_DENIED', `${params.path}: the agent user may not list it`);
    throw new HiveError('INTERNAL_ERROR', `${params.path}: ${(err as Error).message}`);
  }
  if (!params.hidden) names = names.filter((n) => !n.startsWith('.'));
  const entries: FileListResult['entries'] = [];
  for (const name of names.slice(0, params.limit)) {
    const st = await lstat(path.join(real, name)).catch(() => undefined);
    if (!st) continue;
    const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
    entries.push({ name, type, size: st.size, mode: `0${(st.mode & 0o7777).toString(8).padStart(3, '0')}`, mtime: st.mtime.toISOString() });
  }
  return { path: params.path, realPath: real, entries, total: names.length, truncated: names.length > params.limit };
}
