import { realpathSync } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { NodeCommandName } from '@hive/protocol';
import type { AgentConfig } from './config.js';
import { HiveError, isScriptCommand, SCRIPT_COMMAND_PREFIX } from './lib/protocol-lite.js';

/**
 * The node's local policy (seed 000 §7, §10.4; seed 004 "allowlisted operations"): what this
 * machine accepts whatever the hub asks. Refusals are PERMISSION_DENIED.
 */

export type PolicySwitch =
  | 'allow_bash'
  | 'allow_file_read'
  | 'allow_file_write'
  | 'allow_logs'
  | 'allow_power'
  | 'allow_containers'
  | 'allow_tasks'
  | 'allow_shell';

/** The node command (not in the catalog: it opens a PTY bound to a stream) gated by `allow_shell`. */
export const SESSION_OPEN_COMMAND = 'session.open';

/**
 * The switch that gates each catalog command; null = always served (read-only facts). Its keys are
 * the catalog's (`NODE_COMMANDS`), in the catalog's order (a test checks it): the agent's start
 * path reads them from here, not from the catalog with its schemas (see lib/protocol-lite.ts).
 */
export const COMMAND_SWITCH: Record<NodeCommandName, PolicySwitch | null> = {
  'system.info': null,
  'system.health': null,
  'system.metrics': null,
  'process.list': null,
  'service.status': null,
  'logs.collect': 'allow_logs',
  'logs.search': 'allow_logs',
  'logs.analyze': 'allow_logs',
  'file.read': 'allow_file_read',
  'file.write': 'allow_file_write',
  'file.list': 'allow_file_read',
  'container.list': 'allow_containers',
  'container.spawn': 'allow_containers',
  'container.stop': 'allow_containers',
  power: 'allow_power',
  'system.run': 'allow_bash',
  'task.run': 'allow_tasks',
};

/** = @hive/protocol isNodeCommand */
export function isNodeCommand(name: string): name is NodeCommandName {
  return Object.hasOwn(COMMAND_SWITCH, name);
}

/** Path segments refused anywhere (key material), whatever the lists say. */
export const BLOCKED_SEGMENTS = ['.ssh', '.gnupg'];

export interface Policy {
  readonly config: AgentConfig;
  /** Realpath-resolved roots. */
  readonly allowedRoots: readonly string[];
  readonly blockedRoots: readonly string[];
}

export interface PolicyContext {
  /** The agent's state directory (device key, tokens): never readable or writable remotely. */
  stateDir?: string | undefined;
  /** The agent config file: writing it would widen the policy at the next start. */
  configFile?: string | undefined;
}

function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

/** realpath when the path exists, else the normalized absolute path. */
function canonical(p: string): string {
  const abs = path.resolve(expandHome(p));
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}

export function compilePolicy(config: AgentConfig, ctx: PolicyContext = {}): Policy {
  const blocked = [...config.policy.blocked_paths];
  if (ctx.stateDir) blocked.push(ctx.stateDir);
  if (ctx.configFile) blocked.push(ctx.configFile);
  for (const s of Object.values(config.scripts)) blocked.push(s.path);
  // Both the lexical and the resolved spelling are blocked, so `/tmp/x` and `/private/tmp/x` match.
  const blockedRoots = [...new Set(blocked.flatMap((b) => [path.resolve(expandHome(b)), canonical(b)]))];
  const allowedRoots = [...new Set(config.policy.allowed_paths.map(canonical))];
  return { config, allowedRoots, blockedRoots };
}

export function isInside(child: string, root: string): boolean {
  if (root === '/') return true;
  return child === root || child.startsWith(`${root}/`);
}

/** Why `p` (absolute, normalized) is refused, or undefined. */
export function pathRefusal(policy: Policy, p: string): string | undefined {
  if (p.split('/').some((seg) => BLOCKED_SEGMENTS.includes(seg))) return 'path contains a blocked directory (.ssh, .gnupg)';
  const blocked = policy.blockedRoots.find((b) => isInside(p, b));
  if (blocked) return `blocked by blocked_paths (${blocked})`;
  if (!policy.allowedRoots.some((a) => isInside(p, a))) return 'outside allowed_paths';
  return undefined;
}

function deny(input: string, reason: string): never {
  throw new HiveError('PERMISSION_DENIED', `${input}: ${reason}`, { path: input, reason });
}

export interface ResolvedPath {
  /** `path.resolve` of the input (`..` removed, symlinks not followed). */
  lexical: string;
  /** Symlinks followed; this is what is actually opened. */
  real: string;
  exists: boolean;
}

/**
 * Resolves a requested path and checks it before and after following symlinks, so neither `..`
 * nor a symlink leads out of allowed_paths or into blocked_paths. For writes the file may not
 * exist yet: its directory is resolved instead; a symlink at the target is followed and checked.
 */
export async function resolvePolicyPath(policy: Policy, input: string, opts: { forWrite?: boolean } = {}): Promise<ResolvedPath> {
  if (!path.isAbsolute(input)) throw new HiveError('INVALID_PARAMETERS', 'path must be absolute', { path: input });
  const lexical = path.resolve(input);
  const lexicalRefusal = pathRefusal(policy, lexical);
  if (lexicalRefusal) deny(input, lexicalRefusal);
  let real: string;
  let exists = true;
  try {
    real = await realpath(lexical);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !opts.forWrite) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // A dangling symlink is refused like an escape: its target is unknown territory.
        const isLink = await lstat(lexical).then(
          (s) => s.isSymbolicLink(),
          () => false,
        );
        if (isLink) deny(input, 'symlink target does not exist');
        throw new HiveError('NOT_FOUND', `${input}: no such file or directory`, { path: input });
      }
      if ((err as NodeJS.ErrnoException).code === 'EACCES') deny(input, 'the agent user may not access it');
      throw new HiveError('INTERNAL_ERROR', `${input}: ${(err as Error).message}`);
    }
    exists = false;
    const isLink = await lstat(lexical).then(
      (s) => s.isSymbolicLink(),
      () => false,
    );
    if (isLink) deny(input, 'symlink target does not exist');
    let dir: string;
    try {
      dir = await realpath(path.dirname(lexical));
    } catch {
      throw new HiveError('NOT_FOUND', `${path.dirname(input)}: no such directory`, { path: input });
    }
    real = path.join(dir, path.basename(lexical));
  }
  const realRefusal = pathRefusal(policy, real);
  if (realRefusal) deny(input, `resolves to ${real}, ${realRefusal}`);
  return { lexical, real, exists };
}

// ---------------------------------------------------------------- argv blocklist

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'fish', 'csh', 'tcsh', 'rbash']);
/** Interpreters and the flags that take program text inline. */
const INLINE_CODE: Record<string, readonly string[]> = {
  python: ['-c'],
  python2: ['-c'],
  python3: ['-c'],
  perl: ['-e', '-E'],
  ruby: ['-e'],
  node: ['-e', '--eval', '-p', '--print'],
  nodejs: ['-e', '--eval', '-p', '--print'],
  php: ['-r'],
  lua: ['-e'],
};
/** Targets a recursive rm/chmod/chown must never get. */
const CRITICAL_DIRS = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/usr',
  '/var',
]);
const FS_DESTROYERS = /^(?:mkfs(?:\..+)?|mke2fs|mkswap|wipefs|mkntfs|mkdosfs)$/;
const DISK_DEVICE = /^\/dev\/(?:sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|md\d|dm-\d|loop\d|mapper\/|disk\/)/;
const DISK_WRITERS = new Set(['dd', 'tee', 'cp', 'mv', 'shred', 'truncate', 'install', 'cat', 'sed', 'ln']);

/** Programs that run another program given in their arguments. */
const WRAPPERS = new Set([
  'sudo',
  'doas',
  'env',
  'nice',
  'ionice',
  'nohup',
  'timeout',
  'stdbuf',
  'setsid',
  'chrt',
  'taskset',
  'xargs',
  'time',
  'command',
  'exec',
  'chroot',
  'flock',
  'runuser',
  'unshare',
  'nsenter',
  'systemd-run',
  'busybox',
  'strace',
  'ltrace',
  'find',
]);
/** Programs whose argument is shell text. */
const SHELL_TEXT = new Set(['watch', 'su']);

const base = (a: string) => a.slice(a.lastIndexOf('/') + 1);

function isCritical(arg: string): boolean {
  if (arg.startsWith('-')) return false;
  let a = arg.replace(/\/\*$/, '/').replace(/\/\.$/, '/');
  if (!a.startsWith('/')) return false;
  a = path.posix.normalize(a);
  if (a.length > 1) a = a.replace(/\/+$/, '');
  return CRITICAL_DIRS.has(a);
}

function hasRecursiveFlag(args: readonly string[]): boolean {
  return args.some((a) => a === '--recursive' || (/^-[a-zA-Z]+$/.test(a) && /[rR]/.test(a)));
}

/** Rules for an argv whose program is `args[0]` (also applied after wrappers such as sudo, env, timeout). */
function programRefusal(args: readonly string[]): { rule: string; reason: string } | undefined {
  const prog = base(args[0] ?? '');
  const rest = args.slice(1);
  if (prog === 'rm' && (rest.includes('--no-preserve-root') || (hasRecursiveFlag(rest) && rest.some(isCritical)))) {
    return { rule: 'rm-recursive-system', reason: 'recursive rm of / or a top-level system directory' };
  }
  if (prog === 'find' && rest.includes('-delete') && rest.some(isCritical)) {
    return { rule: 'rm-recursive-system', reason: 'find -delete over / or a top-level system directory' };
  }
  if (FS_DESTROYERS.test(prog)) return { rule: 'mkfs', reason: `${prog} destroys file systems` };
  if (prog === 'dd' && rest.some((a) => (a.startsWith('of=/dev/') && a !== 'of=/dev/null') || (a.startsWith('if=') && DISK_DEVICE.test(a.slice(3))))) {
    return { rule: 'dd-device', reason: 'dd to or from a device' };
  }
  if ((prog === 'chmod' || prog === 'chown' || prog === 'chgrp') && hasRecursiveFlag(rest) && rest.some(isCritical)) {
    return { rule: 'chmod-recursive-system', reason: `recursive ${prog} of / or a top-level system directory` };
  }
  if (DISK_WRITERS.has(prog) && rest.some((a) => DISK_DEVICE.test(a))) {
    return { rule: 'write-disk-device', reason: `${prog} on a raw disk device` };
  }
  if (SHELLS.has(prog) || (prog === 'busybox' && SHELLS.has(base(rest[0] ?? '')))) {
    const shellArgs = prog === 'busybox' ? rest.slice(1) : rest;
    const operands = shellArgs.filter((a) => !a.startsWith('-'));
    if (shellArgs.some((a) => /^-[a-zA-Z]*[cs][a-zA-Z]*$/.test(a)) || operands.length === 0) {
      return { rule: 'shell-inline', reason: 'a shell with inline or piped commands (use a script command instead)' };
    }
  }
  if (SHELL_TEXT.has(prog) && (prog === 'watch' || rest.some((a) => a === '-c' || a.startsWith('--command')))) {
    return { rule: 'shell-inline', reason: `${prog} runs its argument through a shell` };
  }
  const inline = INLINE_CODE[prog.replace(/[\d.]+$/, '')];
  const inlineFlag = (a: string, f: string) =>
    a === f || (f.length === 2 && !a.startsWith('--') && (a.startsWith(f) || (/^-[a-zA-Z]{1,4}$/.test(a) && a.includes(f.charAt(1)))));
  if (inline && rest.some((a) => inline.some((f) => inlineFlag(a, f)))) {
    return { rule: 'interpreter-inline', reason: `${prog} with inline program text` };
  }
  return undefined;
}

/** Patterns that are dangerous in any element, wherever they appear. */
function elementRefusal(argv: readonly string[]): { rule: string; reason: string } | undefined {
  for (const a of argv) {
    if (/:\s*\(\s*\)\s*\{/.test(a) || /\{\s*:\s*\|\s*:\s*&\s*\}/.test(a)) return { rule: 'fork-bomb', reason: 'fork bomb' };
    if (/\|\s*(?:sudo\s+)?(?:\/\S*\/)?(?:ba|da|z|k|c|tc|fi)?sh\b/.test(a)) return { rule: 'pipe-to-shell', reason: 'output piped into a shell (curl | sh)' };
    if (/>\s*\/dev\/(?:sd|hd|vd|xvd|nvme|mmcblk)/.test(a)) return { rule: 'redirect-disk-device', reason: 'redirect onto a disk device' };
  }
  return undefined;
}

function tokens(entry: string): string[] {
  return entry.split(/\s+/).filter(Boolean);
}

/**
 * The blocklist (seed 000 §10.4, adapted to argv): refused even when the program is allowlisted.
 * Program rules are checked at argv[0] and, behind a wrapper (`sudo`, `env`, `timeout`, `nice`,
 * `xargs`, ...), at every position, so wrappers do not hide the real command; configured `blocked_argv` token prefixes match anywhere.
 */
export function blockedArgv(argv: readonly string[], extra: readonly string[] = []): { rule: string; reason: string } | undefined {
  const el = elementRefusal(argv);
  if (el) return el;
  // Behind a wrapper any later element may be the real program, so every position is checked.
  const wrapped = WRAPPERS.has(base(argv[0] ?? ''));
  for (let i = 0; i < argv.length; i++) {
    const hit = i === 0 || wrapped ? programRefusal(argv.slice(i)) : undefined;
    if (hit) return hit;
    for (const entry of extra) {
      const t = tokens(entry);
      if (t.length > 0 && t.every((tok, j) => (j === 0 ? base(argv[i + j] ?? '') === base(tok) : argv[i + j] === tok))) {
        return { rule: 'blocked_argv', reason: `matches blocked_argv "${entry}"` };
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- commands and summary

/** Why the local policy refuses a command, or undefined when it is served. */
/** Effective `allow_shell`: explicit, or following `allow_bash`. */
export function shellAllowed(config: AgentConfig): boolean {
  return config.policy.allow_shell ?? config.policy.allow_bash;
}

export function commandRefusal(config: AgentConfig, command: string): string | undefined {
  if (command === SESSION_OPEN_COMMAND) {
    if (shellAllowed(config)) return undefined;
    return config.policy.allow_shell === false
      ? `${command} is disabled on this satellite (policy.allow_shell: false)`
      : `${command} is disabled on this satellite (policy.allow_bash: false and allow_shell unset)`;
  }
  if (isNodeCommand(command)) {
    const sw = COMMAND_SWITCH[command];
    if (sw && !config.policy[sw]) return `${command} is disabled on this satellite (policy.${sw}: false)`;
    if (command === 'system.run' && !config.system_run.enabled) return 'system.run is disabled on this satellite (system_run.enabled: false)';
    return undefined;
  }
  if (isScriptCommand(command)) {
    return Object.hasOwn(config.scripts, command.slice(SCRIPT_COMMAND_PREFIX.length)) ? undefined : `${command} is not declared in this agent's config`;
  }
  return `${command} is not a command this agent knows`;
}

/** Exactly the commands the local policy serves: the `commands` claims sent at connect. */
export function enabledCommands(config: AgentConfig): string[] {
  const catalog = (Object.keys(COMMAND_SWITCH) as NodeCommandName[]).filter((c) => commandRefusal(config, c) === undefined);
  const scripts = Object.keys(config.scripts).map((n) => `${SCRIPT_COMMAND_PREFIX}${n}`);
  const session = commandRefusal(config, SESSION_OPEN_COMMAND) === undefined ? [SESSION_OPEN_COMMAND] : [];
  return [...catalog, ...session, ...scripts];
}

/** The effective policy as reported in `connect` (ConnectParams.policy), for operators to see on the hub. */
export function policySummary(policy: Policy): Record<string, unknown> {
  const c = policy.config;
  const p = c.policy;
  return {
    version: 1,
    switches: {
      allow_bash: p.allow_bash && c.system_run.enabled,
      allow_file_read: p.allow_file_read,
      allow_file_write: p.allow_file_write,
      allow_logs: p.allow_logs,
      allow_power: p.allow_power,
      allow_containers: p.allow_containers,
      allow_tasks: p.allow_tasks,
      allow_shell: shellAllowed(c),
    },
    sessions: { max_sessions: p.max_sessions },
    tasks: { allow: c.tasks.allow },
    system_run: {
      allow: c.system_run.allow,
      blocked_argv: p.blocked_argv,
      builtin_blocklist: [
        'rm-recursive-system',
        'mkfs',
        'dd-device',
        'chmod-recursive-system',
        'write-disk-device',
        'shell-inline',
        'interpreter-inline',
        'fork-bomb',
        'pipe-to-shell',
        'redirect-disk-device',
      ],
      max_output_bytes: c.system_run.max_output_bytes,
      max_timeout_ms: c.system_run.max_timeout_ms,
    },
    paths: { allowed: policy.allowedRoots, blocked: policy.blockedRoots, blocked_segments: BLOCKED_SEGMENTS },
    files: c.files,
    scripts: Object.entries(c.scripts).map(([name, s]) => ({ name, params: Object.keys(s.params), pass: s.pass, timeout_s: s.timeout_s })),
    services_watched: c.services.watch,
    containers: { allowed_images: c.containers.allowed_images, max_containers: c.containers.max_containers },
  };
}
