import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist');

/**
 * Runs the agent's start path (the launcher's modules and argument parsing, the default config,
 * the policy and a status report on a Docker host) in a fresh node process built from dist/, and
 * lists the modules it loaded.
 */
function modulesLoadedAtStart(): string[] {
  const hooks = `let port; export function initialize(d) { port = d.port; }
    export async function load(url, context, next) { port.postMessage(url); return next(url, context); }`;
  const script = `
    import { register } from 'node:module';
    import { MessageChannel } from 'node:worker_threads';
    const { port1, port2 } = new MessageChannel();
    const seen = [];
    port1.on('message', (u) => seen.push(u));
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}), { data: { port: port2 }, transferList: [port2] });
    const dist = ${JSON.stringify(DIST)};
    const { parseAgentArgs } = await import(dist + '/launch.js');
    if (!parseAgentArgs(['--hub', 'ws://127.0.0.1:7420/ws', '--state', '/nonexistent', '--log-level', 'warn'])) throw new Error('launcher refused its usual command line');
    const { readAgentConfig } = await import(dist + '/config-defaults.js');
    const { compilePolicy, enabledCommands, policySummary } = await import(dist + '/policy.js');
    const { buildStatusReport } = await import(dist + '/status.js');
    const policy = compilePolicy(await readAgentConfig(undefined), { stateDir: '/nonexistent' });
    enabledCommands(policy.config);
    policySummary(policy);
    // A Docker host: the report counts containers on the engine socket.
    const { createServer } = await import('node:http');
    const sock = ${JSON.stringify(path.join(os.tmpdir(), `hive-footprint-${process.pid}.sock`))};
    const engine = createServer((_, res) => res.end(JSON.stringify([{ Id: 'c'.repeat(64), Names: ['/c'], Image: 'nginx', State: 'running', Status: 'Up', Created: 1, Labels: {} }])));
    await new Promise((r) => engine.listen(sock, r));
    policy.config.containers.socket = sock;
    const report = await buildStatusReport(policy);
    engine.close();
    if (report.containers?.running !== 1) throw new Error('no container counts: ' + JSON.stringify(report.containers));
    await new Promise((r) => setTimeout(r, 100));
    port1.close();
    process.stdout.write(JSON.stringify(seen));
  `;
  return JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, HIVE_AGENT_CONFIG: '' } }),
  );
}

describe('agent footprint', () => {
  it('starts without zod, the protocol schemas, yaml, commander, dockerode, node-pty or child_process (SPEC: idle RSS under 50 MB)', () => {
    const loaded = modulesLoadedAtStart();
    expect(loaded.some((u) => u.endsWith('/agent/dist/status.js'))).toBe(true);
    const unwanted = loaded.filter((u) =>
      /\/node_modules\/(zod|yaml|commander|dockerode|node-pty|systeminformation)\/|\/protocol\/dist\/(index|commands|frames|invoke|methods)\.js$|^node:child_process$/.test(
        u,
      ),
    );
    expect(unwanted).toEqual([]);
  });
});
