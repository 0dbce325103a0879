import path from 'node:path';
import { type LogFinding, type LogsAnalyzeParams, type LogsAnalyzeResult, type ProposedFix, UNIT_NAME_RE } from '@hive/protocol';
import { blockedArgv, commandRefusal, type Policy, pathRefusal } from '../policy.js';
import { type LogEnv, readLogLines } from './logs-source.js';
import { matchAllow } from './system-run.js';

type Severity = LogFinding['severity'];
type Fix = Omit<ProposedFix, 'allowedByLocalPolicy'>;

export interface LogRule {
  id: string;
  category: string;
  severity: Severity;
  pattern: RegExp;
  suggestion: string;
  /** A catalog command invocation for the hub to run — only as a separate, approved command. */
  fix?: (m: RegExpExecArray, line: string) => Fix | null;
}

const systemRun = (argv: string[], description: string, kind: Fix['kind'] = 'fix'): Fix => ({ kind, command: 'system.run', params: { argv }, description });

/**
 * Known error patterns (seed 000 §5.3), most specific first; a line counts for the first rule it
 * matches. Fixes are proposals expressed as catalog commands, never executed here.
 */
export const LOG_RULES: readonly LogRule[] = [
  {
    id: 'gpu-timeout',
    category: 'gpu',
    severity: 'error',
    pattern: /amdgpu.*timeout/i,
    suggestion: 'The AMD GPU ring timed out; enable GPU recovery so the driver resets the GPU instead of hanging.',
    fix: () => ({
      kind: 'fix',
      command: 'file.write',
      params: { path: '/etc/modprobe.d/amdgpu.conf', content: 'options amdgpu gpu_recovery=1\n', mode: 'overwrite' },
      description: 'Enable amdgpu GPU recovery (takes effect after a reboot)',
    }),
  },
  {
    id: 'pulseaudio-refused',
    category: 'audio',
    severity: 'warning',
    pattern: /pulseaudio.*connection refused/i,
    suggestion: 'PulseAudio does not answer; restart it for the user session.',
    fix: () => systemRun(['systemctl', '--user', 'restart', 'pulseaudio'], 'Restart PulseAudio'),
  },
  {
    id: 'oom-kill',
    category: 'memory',
    severity: 'critical',
    pattern: /out of memory: kill(?:ed)? process \d+ \(([^)]+)\)|invoked oom-killer|oom-kill:|oom_reaper|memory cgroup out of memory/i,
    suggestion: 'The kernel OOM killer ended a process. Find the biggest memory users, then add memory or swap, or cap the service (MemoryMax=).',
    fix: () => ({ kind: 'diagnose', command: 'process.list', params: { sort: 'mem', limit: 10 }, description: 'Show the ten biggest memory users' }),
  },
  {
    id: 'disk-full',
    category: 'disk',
    severity: 'critical',
    pattern: /no space left on device|\bENOSPC\b|disk (?:is )?full|file ?system (?:is )?full/i,
    suggestion: 'A file system is full. Free space (old logs, caches, images) or grow the volume.',
    fix: () => systemRun(['journalctl', '--vacuum-size=200M'], 'Shrink the systemd journal to 200 MB'),
  },
  {
    id: 'io-error',
    category: 'disk',
    severity: 'critical',
    pattern: /\bI\/O error\b|EXT4-fs error|XFS \([^)]*\):.*error|blk_update_request:.*error/i,
    suggestion: "Storage reports I/O errors: check the disk's health (smartctl -a) and make sure backups are current.",
  },
  {
    id: 'segfault',
    category: 'crash',
    severity: 'error',
    pattern: /(?:([\w.-]+)\[\d+\]: )?segfault at|segmentation fault|general protection fault|\bSIGSEGV\b|core dumped/i,
    suggestion: 'A program crashed. Look for a known bug or an update of its package, and at its core dump (coredumpctl).',
    fix: (m) =>
      m[1]
        ? {
            kind: 'diagnose',
            command: 'logs.search',
            params: { source: 'journal', pattern: m[1], since: '1d' },
            description: `Journal lines of ${m[1]} from the last day`,
          }
        : null,
  },
  {
    id: 'unit-failed',
    category: 'service',
    severity: 'error',
    pattern:
      /([\w@.:-]+\.(?:service|socket|timer|mount)): (?:Main process exited, code=\w+, status=|Failed with result|Start request repeated too quickly)|([\w@.:-]+\.(?:service|socket|timer|mount)) entered failed state|Failed to start (.+?)\.?$/,
    suggestion: 'A systemd unit failed. Read its journal, fix the cause, then restart it.',
    fix: (m) => {
      const unit = m[1] ?? m[2];
      return unit && UNIT_NAME_RE.test(unit) ? systemRun(['systemctl', 'restart', unit], `Restart ${unit}`) : null;
    },
  },
  {
    id: 'auth-failure',
    category: 'security',
    severity: 'warning',
    pattern: /authentication failure|failed password for|invalid user \S+ from|FAILED LOGIN|pam_unix\([^)]*\): auth|maximum authentication attempts exceeded/i,
    suggestion: 'Failed logins. If they repeat from one address, block it (fail2ban, firewall) and turn off password logins.',
  },
  {
    id: 'connection-refused',
    category: 'network',
    severity: 'error',
    pattern: /connection refused|\bECONNREFUSED\b/i,
    suggestion: 'A connection was refused: the target service is down or not listening on that address.',
    fix: () => systemRun(['ss', '-tuln'], 'List listening sockets', 'diagnose'),
  },
  {
    id: 'dns-failure',
    category: 'network',
    severity: 'warning',
    pattern: /temporary failure in name resolution|could not resolve host|getaddrinfo ENOTFOUND|\bSERVFAIL\b|\bNXDOMAIN\b/i,
    suggestion: 'Name resolution fails: check the resolver configuration and that the DNS server answers.',
    fix: () => ({ kind: 'diagnose', command: 'file.read', params: { path: '/etc/resolv.conf' }, description: 'Show the resolver configuration' }),
  },
  {
    id: 'permission-denied',
    category: 'permissions',
    severity: 'error',
    pattern: /permission denied|\bEACCES\b|operation not permitted|\bEPERM\b/i,
    suggestion: 'A process may not access a file: check owner, group and mode of the path in the message (and SELinux/AppArmor).',
    fix: (_m, line) => {
      const p = /(\/[\w.@+-]+(?:\/[\w.@+-]+)*)/.exec(line)?.[1];
      return p
        ? { kind: 'diagnose', command: 'file.list', params: { path: path.posix.dirname(p) }, description: `List ${path.posix.dirname(p)} with modes` }
        : null;
    },
  },
  {
    id: 'too-many-open-files',
    category: 'resources',
    severity: 'error',
    pattern: /too many open files|\bEMFILE\b/i,
    suggestion: 'A process ran out of file descriptors: raise its limit (LimitNOFILE=) or find the leak.',
  },
  {
    id: 'hung-task',
    category: 'kernel',
    severity: 'warning',
    pattern: /blocked for more than \d+ seconds|hung_task/i,
    suggestion: 'A task was stuck in the kernel, usually waiting for slow or failing storage or a network file system.',
  },
  {
    id: 'certificate',
    category: 'tls',
    severity: 'error',
    pattern: /certificate (?:has )?expired|certificate verify failed|unable to get local issuer certificate/i,
    suggestion: 'A TLS certificate is expired or not trusted: renew it or fix the CA bundle.',
  },
];

const SEVERITY_RANK: Record<Severity, number> = { critical: 3, error: 2, warning: 1, info: 0 };

/** Whether this node's own policy would run the fix as it stands. */
export function fixAllowedLocally(policy: Policy, fix: Fix): boolean {
  const cfg = policy.config;
  if (commandRefusal(cfg, fix.command)) return false;
  const params = fix.params as { argv?: string[]; path?: string };
  if (fix.command === 'system.run' && params.argv) {
    return !blockedArgv(params.argv, cfg.policy.blocked_argv) && matchAllow(params.argv, cfg.system_run.allow) !== undefined;
  }
  if (fix.command.startsWith('file.') && params.path) return pathRefusal(policy, path.posix.resolve(params.path)) === undefined;
  return true;
}

/** Applies the rules to lines: one finding per rule and distinct fix. */
export function analyzeLines(lines: readonly string[], policy: Policy, rules: readonly LogRule[] = LOG_RULES): LogFinding[] {
  const byKey = new Map<string, LogFinding>();
  for (const line of lines) {
    for (const rule of rules) {
      const m = rule.pattern.exec(line);
      if (!m) continue;
      const fix = rule.fix?.(m, line) ?? null;
      const key = `${rule.id}\n${fix ? JSON.stringify(fix.params) : ''}`;
      let f = byKey.get(key);
      if (!f) {
        if (byKey.size >= 100) break;
        f = {
          rule: rule.id,
          category: rule.category,
          severity: rule.severity,
          suggestion: rule.suggestion,
          count: 0,
          samples: [],
          proposedFix: fix ? { ...fix, allowedByLocalPolicy: fixAllowedLocally(policy, fix) } : null,
        };
        byKey.set(key, f);
      }
      f.count++;
      if (f.samples.length < 3) f.samples.push(line.slice(0, 512));
      break;
    }
  }
  return [...byKey.values()].sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || b.count - a.count);
}

/** `logs.analyze`: known error patterns in the newest lines of a source → findings with proposed fixes. */
export async function logsAnalyze(params: LogsAnalyzeParams, env: LogEnv): Promise<LogsAnalyzeResult> {
  const { lines } = await readLogLines(params, params.lines, env);
  const findings = analyzeLines(lines, env.policy);
  const bySeverity: Record<string, number> = {};
  const byCategory: Record<string, number> = {};
  for (const f of findings) {
    bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + f.count;
    byCategory[f.category] = (byCategory[f.category] ?? 0) + f.count;
  }
  return {
    source: params.source,
    scanned: lines.length,
    findings,
    summary: { total: findings.reduce((s, f) => s + f.count, 0), bySeverity, byCategory },
  };
}
