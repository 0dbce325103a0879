import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyHubGcDefaults, buildHub, ConfigError, certPaths, type Hub, loadConfig, loadOrCreateHubCert } from '@hive/server';
import { stringify as stringifyYaml } from 'yaml';

export interface ServerFlags {
  port?: string;
  host?: string;
  data?: string;
  config?: string;
  printConfig?: boolean;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/** The effective config with secrets redacted: keys, secrets and passwords inside connection URLs. */
export function printableConfig(value: unknown, key = ''): any {
  if (typeof value === 'string') {
    if (/(api_?key|secret|password|token)$/i.test(key)) return '[REDACTED]';
    return value.replace(/(\/\/[^:/@]*:)[^@]+@/, '$1[REDACTED]@');
  }
  if (Array.isArray(value)) return value.map((v) => printableConfig(v));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, printableConfig(v, k)]));
  return value;
}

function banner(hub: Hub, url: string, withAgent: boolean): string {
  const lines = [
    '',
    `  Hive hub listening on ${url}`,
    `  Open the fleet view:   ${url}/#key=${hub.consoleKey}   (read-only link, valid while this process runs)`,
  ];
  if (hub.tls) {
    lines.push(
      '',
      `  TLS certificate SHA-256 fingerprint${hub.tls.generated ? ' (self-signed, created now)' : hub.tls.selfSigned ? ' (self-signed)' : ''}:`,
      `      ${hub.tls.fingerprint}`,
      `  Agents:  hive-agent --hub ${url.replace(/^https/, 'wss')}/ws --hub-fingerprint ${hub.tls.fingerprint}`,
      `  CLI:     HIVE_HUB_FINGERPRINT=${hub.tls.fingerprint}   (or: hive login --url ${url} …)`,
    );
  }
  if (hub.generatedAdminKey) {
    lines.push(
      '',
      '  An admin API key was generated. It is shown ONCE — store it now:',
      `      ${hub.generatedAdminKey}`,
      `  Use it with:  hive login --url ${url} --api-key <key>    (or HIVE_API_KEY=<key>)`,
    );
  }
  if (hub.generatedAdminPassword) {
    lines.push('', `  Web login: user "admin", one-time password ${hub.generatedAdminPassword}  (change it at first login)`);
  }
  if (withAgent) lines.push('', '  A local hive-agent is starting and will pair over loopback.');
  lines.push('');
  return lines.join('\n');
}

function configFrom(flags: ServerFlags): ReturnType<typeof loadConfig> {
  try {
    return loadConfig({
      file: flags.config,
      overrides: {
        port: flags.port !== undefined ? Number(flags.port) : undefined,
        host: flags.host,
        dataDir: flags.data,
        tls: flags.tls,
        tlsCert: flags.tlsCert,
        tlsKey: flags.tlsKey,
      },
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hive: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** `hive server fingerprint`: the certificate clients pin, created now if a first start would create it. */
export async function printFingerprint(flags: ServerFlags & { json?: boolean }): Promise<void> {
  const config = configFrom(flags);
  // With TLS off, a certificate left by an earlier `--tls` start is still worth showing.
  if (!config.tls.enabled && !existsSync(certPaths(config).certFile)) {
    process.stderr.write(
      `hive: TLS is off for this hub (tls.enabled false, or bound to loopback ${config.server.host}); enable it with --tls, HIVE_TLS=true or tls.enabled: true\n`,
    );
    process.exit(2);
  }
  let cert: Awaited<ReturnType<typeof loadOrCreateHubCert>>;
  try {
    cert = await loadOrCreateHubCert(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`hive: ${err.message}\n`);
    process.exit(2);
  }
  const { key: _key, cert: _pem, ...info } = cert;
  if (flags.json) process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
  else process.stdout.write(`${cert.fingerprint}\n`);
}

/** Starts the hub from flags/env/config; stops it gracefully on SIGINT/SIGTERM. */
export async function runServer(flags: ServerFlags, opts: { withAgent: boolean }): Promise<void> {
  const config = configFrom(flags);
  if (flags.printConfig) {
    process.stdout.write(`${stringifyYaml(printableConfig(config))}`);
    return;
  }

  // This process is the hub: V8's garbage collector set for it (see applyHubGcDefaults).
  applyHubGcDefaults();
  let hub: Hub;
  try {
    hub = await buildHub(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`hive: ${err.message}\n`);
    process.exit(2);
  }
  let url: string;
  try {
    ({ url } = await hub.listen());
  } catch (err) {
    process.stderr.write(`hive: cannot listen on ${config.server.host}:${config.server.port}: ${(err as Error).message}\n`);
    await hub.close();
    process.exit(1);
  }
  process.stderr.write(`${banner(hub, url, opts.withAgent)}\n`);
  let agent: ChildProcess | undefined;
  if (opts.withAgent) {
    const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../agent/bin/hive-agent.js');
    const pin = hub.tls ? ['--hub-fingerprint', hub.tls.fingerprint] : [];
    agent = spawn(process.execPath, [bin, '--hub', `${url.replace(/^http/, 'ws')}/ws`, '--state', path.join(config.server.data_dir, 'agent'), ...pin], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\nhive: ${signal} received, shutting down gracefully…\n`);
    const agentExited = agent && agent.exitCode === null ? new Promise((r) => agent?.once('exit', r)) : Promise.resolve();
    agent?.kill('SIGTERM');
    await hub.close();
    // Give the local agent a moment to leave; it must not outlive the command that started it.
    const late = setTimeout(() => agent?.kill('SIGKILL'), 5000);
    await agentExited;
    clearTimeout(late);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
