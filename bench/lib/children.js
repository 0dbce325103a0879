import { fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Every child process the bench starts goes through here, so that all of them are killed when
 * the bench ends — normally, on an error, on Ctrl-C, or on SIGTERM. Children are forked with an
 * IPC channel and also end themselves when it closes (see probe.js), which covers a
 * parent killed with SIGKILL.
 */

const live = new Map(); // ChildProcess -> label
const tempDirs = new Set();
let failure;
const failureListeners = new Set();

const PRELOAD = fileURLToPath(new URL('./probe.js', import.meta.url));

function killAllNow() {
  for (const child of live.keys()) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  tempDirs.clear();
}

process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig} received, killing child processes\n`);
    killAllNow();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`bench: uncaught ${err?.stack ?? err}\n`);
  killAllNow();
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`bench: unhandled rejection ${err?.stack ?? err}\n`);
  killAllNow();
  process.exit(1);
});

/** Removed at exit, whatever happens. */
export function registerTempDir(dir) {
  tempDirs.add(dir);
}

/** Rejected as soon as a tracked child dies unexpectedly; race every wait against it. */
export function onFailure(fn) {
  if (failure) fn(failure);
  else failureListeners.add(fn);
  return () => failureListeners.delete(fn);
}

/**
 * Forgets a failure once the caller has dealt with it (the full suite records it in the section
 * that caused it and carries on with the next one).
 */
export function clearFailure() {
  failure = undefined;
}

function fail(err) {
  if (failure) return;
  failure = err;
  for (const fn of failureListeners) fn(err);
  failureListeners.clear();
}

/**
 * Forks `script` with an IPC channel. `label` names it in errors. An exit that was not asked
 * for (`stopChild`) fails the whole run.
 */
export function forkChild(script, args, { label, env, silent = false, execArgv = [] } = {}) {
  const child = fork(script, args, {
    env: env ?? process.env,
    execArgv: ['--import', PRELOAD, ...execArgv],
    silent,
    serialization: 'advanced',
  });
  live.set(child, label);
  child.expectedExit = false;
  child.once('exit', (code, signal) => {
    live.delete(child);
    if (!child.expectedExit) fail(new Error(`${label} (pid ${child.pid}) exited unexpectedly (code ${code}, signal ${signal})`));
  });
  child.on('error', (err) => {
    if (!child.expectedExit) fail(new Error(`${label}: ${err.message}`));
  });
  // A worker reports a problem it cannot recover from.
  child.on('message', (m) => {
    if (m && m.type === 'error') fail(new Error(`${label}: ${m.message}`));
  });
  return child;
}

/** Settles with `promise`, or rejects on timeout or when any tracked child failed. */
export function guard(promise, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${what}`)), timeoutMs);
    const off = onFailure((err) => {
      clearTimeout(timer);
      reject(err);
    });
    promise.then(
      (v) => {
        clearTimeout(timer);
        off();
        resolve(v);
      },
      (err) => {
        clearTimeout(timer);
        off();
        reject(err);
      },
    );
  });
}

/** Next IPC message of `type` from `child`. */
export function nextMessage(child, type) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m && m.type === type) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
  });
}

/** Asks a child to stop (IPC 'stop' or a signal), waits for its exit, SIGKILLs after `timeoutMs`. */
export function stopChild(child, { signal, timeoutMs = 10_000 } = {}) {
  child.expectedExit = true;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode, forced: false });
  return new Promise((resolve) => {
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, forced });
    });
    try {
      if (signal) child.kill(signal);
      else if (child.connected) child.send({ type: 'stop' });
      else child.kill('SIGTERM');
    } catch {
      child.kill('SIGKILL');
    }
  });
}
