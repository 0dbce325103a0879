import { readFileSync } from 'node:fs';
import type { VerifyReport } from '@hive/server';
import type { Command } from 'commander';
import { ApiError, api, type CliAuth } from '../api.js';

/** The report of `GET /api/v1/audit/verify` (the server's own type; a type import loads nothing). */
export type { VerifyReport };

const ANCHOR = /^[A-Za-z0-9_-]+:\d+:[0-9a-f]{64}$/;

/** Anchors from --anchor (repeatable) and --anchors-file (one per line; blank lines and `#` comments skipped). */
function anchorsOf(o: { anchor?: string[]; anchorsFile?: string }): string[] {
  const list = [...(o.anchor ?? [])];
  if (o.anchorsFile) {
    let text: string;
    try {
      text = readFileSync(o.anchorsFile, 'utf8');
    } catch (err) {
      throw new ApiError(0, 'INVALID_PARAMETERS', `--anchors-file: ${(err as Error).message}`);
    }
    for (const line of text.split('\n')) {
      const l = line.replace(/#.*/, '').trim();
      if (l) list.push(l);
    }
  }
  for (const a of list)
    if (!ANCHOR.test(a)) throw new ApiError(0, 'INVALID_PARAMETERS', `Not an anchor (chain:seq:hash, as printed by hive audit verify): ${a}`);
  return list;
}

export function formatVerify(r: VerifyReport): string {
  const lines: string[] = [];
  const n = (x: number) => x.toLocaleString('en-US');
  const problems = r.chains.reduce((s, c) => s + c.problems.length + (c.problems_omitted ?? 0), 0);
  const bad = r.chains.filter((c) => c.problems.length > 0);
  lines.push(
    `Audit log: ${n(r.chains.length)} chain${r.chains.length === 1 ? '' : 's'}, ${n(r.entries)} entries checked` +
      (r.unchained ? `, ${n(r.unchained)} older entries without a hash (written before chaining; not checked)` : '') +
      (r.oldest ? `; oldest entry ${r.oldest}` : ''),
  );
  if (r.chains.length) {
    const rows = [['CHAIN', 'ENTRIES', 'FROM', 'TO', 'STATUS']];
    for (const c of r.chains)
      rows.push([
        c.chain,
        n(c.entries),
        c.first ? `#${c.first.seq} ${c.first.ts}${c.start === 'pruned' ? ' (older ones pruned)' : ''}` : '-',
        c.last ? `#${c.last.seq} ${c.last.ts} ${c.last.action}` : '-',
        c.problems.length ? `${c.problems.length + (c.problems_omitted ?? 0)} problem(s)` : 'ok',
      ]);
    const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
    for (const row of rows)
      lines.push(
        row
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
      );
  }
  for (const c of bad) {
    lines.push('', `${c.chain}:`);
    for (const p of c.problems) lines.push(`  ${p.kind}: ${p.message}`);
    if (c.problems_omitted) lines.push(`  … and ${n(c.problems_omitted)} more`);
  }
  const heads = r.chains.filter((c) => c.last && c.head_hash);
  if (heads.length) {
    lines.push('', 'Heads (keep them where the database users cannot write; check later with --anchor or --anchors-file):');
    for (const c of heads) lines.push(`${c.chain}:${c.last?.seq}:${c.head_hash}`);
  }
  lines.push(
    '',
    r.ok
      ? 'OK: every chain is intact.'
      : `TAMPERING DETECTED: ${n(problems)} problem${problems === 1 ? '' : 's'} in ${bad.length} chain${bad.length === 1 ? '' : 's'}.`,
  );
  return lines.join('\n');
}

/** `hive audit verify`: the hash-chain check. Exit 0 intact, 1 tampering found (or an error). */
export function addAuditVerify(audit: Command, authed: (cmd: Command) => CliAuth): void {
  audit
    .command('verify')
    .description(
      "Check the audit log's hash chains (one per hub process): changed, deleted, reordered entries. Prints each chain's head; pass noted heads back to catch a cut-off end. Exit 0 intact, 1 tampering found",
    )
    .option('--anchor <chain:seq:hash>', 'a head noted earlier (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--anchors-file <file>', 'file of noted heads, one per line (as printed here)')
    .option('--json', 'JSON output')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals() as { anchor?: string[]; anchorsFile?: string; json?: boolean };
      const anchors = anchorsOf(o);
      const qs = anchors.length ? `?${new URLSearchParams({ anchors: anchors.join(',') })}` : '';
      const res = await api<VerifyReport>(authed(cmd), 'GET', `/api/v1/audit/verify${qs}`);
      process.stdout.write(o.json ? `${JSON.stringify(res.data, null, 2)}\n` : `${formatVerify(res.data)}\n`);
      process.exitCode = res.data.ok ? 0 : 1;
    });
}
