import { setFlagsFromString } from 'node:v8';

/**
 * The agent's launcher (bin/hive-agent.js) starts V8 without its compilers: no TurboFan (the
 * optimizing compiler) and no Sparkplug (the baseline compiler). Their code and the code they
 * make during start-up cost ~4 MB and ~0.5 MB of resident memory that an idle agent never needs
 * (SPEC: idle RSS under 50 MB): its JavaScript at idle is a status report every 30 s and the
 * replies to the hub's pings, which the interpreter runs at no measurable CPU.
 *
 * Work turns them back on for the rest of the process:
 *   - Sparkplug at the first command, whatever it is (baseline code for the command handlers and
 *     the output streaming);
 *   - TurboFan at the first bulk upload to the hub (`file.pull`): a client WebSocket masks every
 *     byte it sends in a JavaScript loop (ws without the optional native bufferutil), ~20 ms of
 *     CPU per MB interpreted against ~2 ms optimized.
 * Nothing else changes behaviour.
 */
let deferred = { baseline: false, optimizing: false };

/** Called by the launcher after it set `--no-sparkplug --no-turbofan`. */
export function deferOptimizingCompiler(): void {
  deferred = { baseline: true, optimizing: true };
}

/** Turns the baseline compiler back on if the launcher deferred it; idempotent. */
export function enableBaselineCompiler(): void {
  if (!deferred.baseline) return;
  deferred.baseline = false;
  setFlagsFromString('--sparkplug');
}

/** Turns the optimizing compiler (and the baseline one) back on if the launcher deferred them; idempotent. */
export function enableOptimizingCompiler(): void {
  enableBaselineCompiler();
  if (!deferred.optimizing) return;
  deferred.optimizing = false;
  setFlagsFromString('--turbofan');
}
