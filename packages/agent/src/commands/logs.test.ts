import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NODE_COMMANDS } from '@hive/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../config.js';
import { compilePolicy } from '../policy.js';
import { analyzeLines, logsAnalyze } from './logs-analyze.js';
import { logsCollect } from './logs-collect.js';
import { logsSearch, matchLines, unsafeRegexReason } from './logs-search.js';
import { filterSince, lineTime, parseSince } from './logs-source.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-logs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const policy = compilePolicy(parseAgentConfig({ policy: { allowed_paths: [dir] } }));
const env = { policy, config: policy.config };

const SAMPLE_LOG = [
  '2024-05-01T10:00:00+00:00 host kernel: Out of memory: Killed process 4242 (java) total-vm:123kB',
  '2024-05-01T10:00:01+00:00 host kernel: oom_reaper: reaped process 4242 (java)',
  '2024-05-01T10:01:00+00:00 host app[99]: write /var/lib/app/data: No space left on device',
  '2024-05-01T10:02:00+00:00 host nginx[12]: open() "/srv/www/index.html" failed (13: Permission denied)',
  '2024-05-01T10:03:00+00:00 host app[99]: connect ECONNREFUSED 127.0.0.1:5432',
  '2024-05-01T10:04:00+00:00 host kernel: worker[777]: segfault at 0 ip 00007f sp 00007ffd error 4 in libc.so',
  '2024-05-01T10:05:00+00:00 host systemd[1]: nginx.service: Main process exited, code=exited, status=1/FAILURE',
  "2024-05-01T10:05:01+00:00 host systemd[1]: nginx.service: Failed with result 'exit-code'.",
  '2024-05-01T10:06:00+00:00 host sshd[5]: Failed password for invalid user admin from 203.0.113.9 port 2222 ssh2',
  '2024-05-01T10:06:05+00:00 host sshd[5]: Failed password for root from 203.0.113.9 port 2223 ssh2',
  '2024-05-01T10:07:00+00:00 host kernel: amdgpu 0000:03:00.0: [gfxhub] ring gfx timeout',
  '2024-05-01T10:08:00+00:00 host app[99]: everything is fine',
];

describe('log analysis rules (seed 000 §5.3)', () => {
  it('categorises known lines and proposes fixes as catalog commands', () => {
    const findings = analyzeLines(SAMPLE_LOG, policy);
    const by = (rule: string) => findings.filter((f) => f.rule === rule);
    expect(by('oom-kill')[0]).toMatchObject({ category: 'memory', severity: 'critical', count: 2, proposedFix: { kind: 'diagnose', command: 'process.list' } });
    expect(by('disk-full')[0]).toMatchObject({
      category: 'disk',
      proposedFix: { kind: 'fix', command: 'system.run', params: { argv: ['journalctl', '--vacuum-size=200M'] }, allowedByLocalPolicy: true },
    });
    expect(by('permission-denied')[0]).toMatchObject({ category: 'permissions', proposedFix: { command: 'file.list', params: { path: '/srv/www' } } });
    expect(by('connection-refused')[0]).toMatchObject({ category: 'network', proposedFix: { params: { argv: ['ss', '-tuln'] } } });
    expect(by('segfault')[0]).toMatchObject({ category: 'crash', proposedFix: { command: 'logs.search', params: { pattern: 'worker' } } });
    expect(by('unit-failed')[0]).toMatchObject({
      category: 'service',
      count: 2,
      proposedFix: { command: 'system.run', params: { argv: ['systemctl', 'restart', 'nginx.service'] }, allowedByLocalPolicy: false },
    });
    expect(by('auth-failure')[0]).toMatchObject({ category: 'security', count: 2, proposedFix: null });
    expect(by('gpu-timeout')[0]).toMatchObject({ category: 'gpu', proposedFix: { command: 'file.write', allowedByLocalPolicy: false } });
    expect(findings.reduce((s, f) => s + f.count, 0)).toBe(11);
    // most severe first
    expect(findings[0]?.severity).toBe('critical');
    for (const f of findings) {
      if (f.proposedFix)
        expect(NODE_COMMANDS[f.proposedFix.command as keyof typeof NODE_COMMANDS].params.safeParse(f.proposedFix.params).success, f.rule).toBe(true);
    }
  });

  it('logs.analyze on a file returns the result schema', async () => {
    const file = path.join(dir, 'app.log');
    writeFileSync(file, `${SAMPLE_LOG.join('\n')}\n`);
    const r = await logsAnalyze({ source: 'file', path: file, lines: 5000 }, env);
    expect(NODE_COMMANDS['logs.analyze'].result.parse(r).scanned).toBe(SAMPLE_LOG.length);
    expect(r.summary.byCategory).toMatchObject({ memory: 2, disk: 1, security: 2 });
  });
});

describe('log sources and search', () => {
  const file = path.join(dir, 'search.log');
  writeFileSync(file, `${SAMPLE_LOG.join('\n')}\n`);

  it('collects the newest lines of a file and filters by since', async () => {
    const r = await logsCollect({ source: 'file', path: file, lines: 2 }, env);
    expect(r).toEqual({ source: 'file', lines: SAMPLE_LOG.slice(-2), truncated: true });
    expect(filterSince(SAMPLE_LOG, Date.parse('2024-05-01T10:06:00Z'))).toHaveLength(4);
  });

  it('parses since and line timestamps', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(parseSince('2h', now)).toBe(Date.parse('2024-05-01T10:00:00Z'));
    expect(parseSince('2024-05-01T10:00:00Z')).toBe(Date.parse('2024-05-01T10:00:00Z'));
    expect(lineTime('2026-11-27T05:36:59,205274+00:00 random: crng')).toBe(Date.parse('2026-11-27T05:36:59.205274+00:00'));
    expect(lineTime('May  1 10:00:00 host sshd[1]: x', new Date('2024-06-01T00:00:00'))).toBe(new Date(2024, 4, 1, 10, 0, 0).getTime());
    expect(lineTime('no time here')).toBeUndefined();
  });

  it('searches by substring (regex characters are literal) and by safe regex', async () => {
    const lit = await logsSearch({ source: 'file', path: file, pattern: '(13:', regex: false, ignoreCase: false, scan: 1000, limit: 10 }, env);
    expect(lit.matches.map((m) => m.index)).toEqual([3]);
    const re = await logsSearch(
      { source: 'file', path: file, pattern: 'failed password for (invalid user )?\\w+', regex: true, ignoreCase: true, scan: 1000, limit: 1 },
      env,
    );
    expect(re).toMatchObject({ scanned: SAMPLE_LOG.length, truncated: true, matches: [{ index: 9 }] });
  });

  it('refuses catastrophic regexes and stops slow ones', () => {
    for (const p of ['(a+)+$', '(a|aa)*b', '(\\w+\\s?)*$', '(x)\\1', '(?<n>a)\\k<n>', '((ab)*)+']) expect(unsafeRegexReason(p), p).toBeDefined();
    for (const p of ['foo.*bar', '^\\d{4}-\\d{2}', '(ab)?c+', '[(a+)+]', 'error|warn']) expect(unsafeRegexReason(p), p).toBeUndefined();
    // Polynomial backtracking that passes the static check still ends within the budget.
    const lines = Array.from({ length: 50 }, () => `${'a'.repeat(3000)}!`);
    const started = Date.now();
    expect(() => matchLines(lines, /a*a*a*a*a*b/, 200)).toThrow(/longer than 200 ms/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('refuses a log file outside allowed_paths', async () => {
    await expect(logsCollect({ source: 'file', path: '/etc/shadow', lines: 10 }, env)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });
});
