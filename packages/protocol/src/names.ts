/**
 * Plain names, patterns and lists of the command catalog (commands.ts), without zod: the agent's
 * start path reads them before any schema is needed (packages/agent/src/lib/protocol-lite.ts).
 */

/** systemd unit names: no leading dash (never an option), no whitespace or shell characters. */
export const UNIT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9:_.@\\-]{0,254}$/;

export const SCRIPT_COMMAND_PREFIX = 'script.';
export const SCRIPT_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;
export const SCRIPT_PARAM_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;

/** `script.<name>` with a valid script name. */
export function isScriptCommand(name: string): boolean {
  return name.startsWith(SCRIPT_COMMAND_PREFIX) && SCRIPT_NAME_RE.test(name.slice(SCRIPT_COMMAND_PREFIX.length));
}

/**
 * Read-only diagnostics: the agent's default system.run allowlist, and the hub's default list of
 * system.run commands that run without approval. Entries are argv prefixes (`systemctl status`
 * allows `systemctl status nginx`, not `systemctl stop nginx`).
 */
export const DEFAULT_SYSTEM_RUN_ALLOW: readonly string[] = [
  'echo',
  'uname',
  'hostname',
  'uptime',
  'date',
  'id',
  'whoami',
  'df',
  'free',
  'ps',
  'ls',
  'ip addr',
  'ss -tuln',
  'systemctl status',
  'journalctl',
];
