/**
 * What the agent needs of @hive/protocol from start to its first command, without zod (and what
 * the agent config's schema needs, so that validating an agent.yaml loads zod but not the catalog).
 *
 * `@hive/protocol`'s entry point evaluates zod and every schema of the catalog: ~5 MB of an idle
 * agent's heap (SPEC: idle RSS under 50 MB), for schemas that only matter once a command arrives
 * (its params are validated then, with the catalog's schemas: commands/index.ts, agent.ts). The
 * modules loaded at start import from here instead:
 *   - HiveError and the catalog's plain names and lists (names.ts) from the protocol's zod-free
 *     modules, by their path in the workspace (the package exports only its entry point); the same
 *     module instances the entry point re-exports.
 */
export { HiveError } from '../../../protocol/dist/errors.js';

export {
  DEFAULT_SYSTEM_RUN_ALLOW,
  isScriptCommand,
  SCRIPT_COMMAND_PREFIX,
  SCRIPT_NAME_RE,
  SCRIPT_PARAM_NAME_RE,
  UNIT_NAME_RE,
} from '../../../protocol/dist/names.js';
