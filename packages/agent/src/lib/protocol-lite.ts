/**
 * What the agent needs of @hive/protocol from start to its first command, without zod (and what
 * the agent config's schema needs, so that validating an agent.yaml loads zod but not the catalog).
 *
 * `@hive/protocol`'s entry point evaluates zod and every schema of the catalog: ~5 MB of an idle
 * agent's heap (SPEC: idle RSS under 50 MB), for schemas that only matter once a command arrives
 * (its params are validated then, with the catalog's schemas: commands/index.ts, agent.ts). The
 * modules loaded at start import from here instead:
 *   - HiveError from the protocol's zod-free module, by its path in the workspace (the package
 *     exports only its entry point); the same module instance the entry point re-exports;
 *   - copies of the few plain constants the start path reads, which live in the protocol's
 *     catalog module next to its schemas. protocol-lite.test.ts keeps them equal to the originals.
 */
export { HiveError } from '../../../protocol/dist/errors.js';

/** = @hive/protocol SCRIPT_COMMAND_PREFIX */
export const SCRIPT_COMMAND_PREFIX = 'script.';
/** = @hive/protocol SCRIPT_NAME_RE */
export const SCRIPT_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;
/** = @hive/protocol SCRIPT_PARAM_NAME_RE */
export const SCRIPT_PARAM_NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;
/** = @hive/protocol UNIT_NAME_RE */
export const UNIT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9:_.@\\-]{0,254}$/;

/** = @hive/protocol isScriptCommand: `script.<name>` with a valid script name. */
export function isScriptCommand(name: string): boolean {
  return name.startsWith(SCRIPT_COMMAND_PREFIX) && SCRIPT_NAME_RE.test(name.slice(SCRIPT_COMMAND_PREFIX.length));
}

/** = @hive/protocol DEFAULT_SYSTEM_RUN_ALLOW */
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
