#!/usr/bin/env node
// Stand-in for an agent CLI (claude/codex/…): the hub spawns it like the real thing. Its
// behaviour is chosen by the prompt (argv[2]); `--claude` makes it speak claude's stream-json.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';

const prompt = (process.argv[2] ?? '').trim();
const claude = process.argv.includes('--claude');
const [mode, arg] = prompt.split(/\s+/);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (s) => createHash('sha256').update(s).digest('hex');

const keyEnv = Object.keys(process.env).filter((k) => k.endsWith('_API_KEY'));

if (claude) out({ type: 'system', subtype: 'init', session_id: 's1', model: 'stand-in', tools: ['Bash'] });

if (mode === 'env') {
  // Reports its whole environment; the key value itself is printed so the test sees it masked.
  out({
    type: 'env',
    env_names: Object.keys(process.env).sort(),
    cwd: process.cwd(),
    key_sha256: Object.fromEntries(keyEnv.map((k) => [k, sha(process.env[k])])),
  });
  for (const k of keyEnv) process.stdout.write(`leak attempt ${k}=${process.env[k]}\n`);
  for (const k of keyEnv) process.stderr.write(`stderr leak ${process.env[k]}\n`);
  if (claude) {
    out({
      type: 'assistant',
      message: {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking the environment.' },
          { type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'env' } },
        ],
      },
    });
    out({ type: 'user', message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }] } });
    out({
      type: 'result',
      subtype: 'success',
      is_error: false,
      result: `done; key is ${process.env.ANTHROPIC_API_KEY}`,
      num_turns: 2,
      usage: { input_tokens: 3, output_tokens: 5 },
    });
  } else out({ type: 'result', text: 'env reported' });
} else if (mode === 'wait-file') {
  // Live streaming proof: says "first", then waits until the test (having seen "first" as a bus
  // event) creates the file; only then ends.
  out({ type: 'message', text: 'first' });
  while (!existsSync(arg)) await sleep(20);
  out({ type: 'message', text: 'second' });
  out({ type: 'result', text: 'finished after the file appeared' });
} else if (mode === 'tree') {
  // A grandchild that ignores SIGTERM (only the SIGKILL escalation stops it), and a leader that
  // also ignores it, so cancel must reach the whole process group.
  const child = spawn(process.execPath, ['-e', "process.on('SIGTERM',()=>{});setInterval(()=>{},1000)"], { stdio: 'ignore' });
  process.on('SIGTERM', () => {});
  out({ type: 'pids', leader: process.pid, grandchild: child.pid });
  setInterval(() => {}, 1000);
} else if (mode === 'sleep') {
  out({ type: 'message', text: 'sleeping' });
  setInterval(() => {}, 1000);
} else if (mode === 'flood') {
  const line = 'x'.repeat(1000);
  for (let i = 0; i < Number(arg ?? 100); i++) process.stdout.write(`${i} ${line}\n`);
} else if (mode === 'fail') {
  process.stderr.write('something went wrong\n');
  process.exitCode = 3;
} else {
  out({ type: 'message', text: `echo: ${prompt}` });
  if (claude) out({ type: 'result', subtype: 'success', is_error: false, result: `echo: ${prompt}` });
}
