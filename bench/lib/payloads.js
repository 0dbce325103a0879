/**
 * Fixed answers of the simulated satellites. Shared by every simulated satellite of a worker
 * (one object, never copied) and by the bare relay's clients, so both answer with the same bytes.
 */

/** A realistic `system.info` result (~400 bytes of JSON), shaped like SystemInfoResult. */
export const SYSTEM_INFO = Object.freeze({
  hostname: 'bench-satellite.example.internal',
  platform: 'linux',
  release: '6.8.0-45-generic',
  arch: 'x64',
  uptimeSeconds: 864_213,
  cpus: 4,
  cpuModel: 'Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz',
  loadAverage: [0.42, 0.37, 0.31],
  memory: { totalBytes: 8_254_332_928, freeBytes: 5_123_457_024 },
  agent: { version: '0.1.0', pid: 4242, rssBytes: 48_234_496, uptimeSeconds: 86_400 },
});

/** The `system.run` result the issue asks for. */
export const SYSTEM_RUN = Object.freeze({
  exitCode: 0,
  signal: null,
  stdout: 'ok\n',
  stderr: '',
  stdoutTruncated: false,
  stderrTruncated: false,
  durationMs: 0,
});

/** Commands the simulated satellites announce in `connect`. */
export const COMMANDS = ['system.info', 'system.run'];
