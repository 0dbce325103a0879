import { setFlagsFromString } from 'node:v8';

/**
 * The agent's launcher (bin/hive-agent.js) starts V8 without its optimizing compiler: TurboFan
 * and the code it makes during start-up cost ~4 MB of resident memory that an idle agent never
 * needs (SPEC: idle RSS under 50 MB). One path does need it: a client WebSocket masks every byte
 * it sends in a JavaScript loop (ws without the optional native bufferutil), ~20 ms of CPU per MB
 * interpreted against ~2 ms optimized. So the first bulk upload to the hub (`file.pull`) turns
 * TurboFan back on for the rest of the process. Nothing else changes behaviour.
 */
let deferred = false;

/** Called by the launcher after it set `--no-turbofan`. */
export function deferOptimizingCompiler(): void {
  deferred = true;
}

/** Turns the optimizing compiler back on if the launcher deferred it; idempotent. */
export function enableOptimizingCompiler(): void {
  if (!deferred) return;
  deferred = false;
  setFlagsFromString('--turbofan');
}
