// Preloaded (`node --import`) into every process the bench forks, the hub included. Two jobs,
// neither of which changes what the process does:
//
// 1. When the bench's IPC channel closes (the bench exited or was killed, even with SIGKILL),
//    end this process too, so no hub or simulated fleet is ever left behind. SIGTERM first (the
//    hub shuts down gracefully on it), a hard exit shortly after.
// 2. Measure event-loop delay, so the bench can tell a slow hub from a slow load generator:
//    {type:'probe-reset'} starts a new window, {type:'probe'} answers {type:'probe', eld}.
import { monitorEventLoopDelay } from 'node:perf_hooks';

process.on('disconnect', () => {
  setTimeout(() => process.exit(1), 5000).unref();
  process.kill(process.pid, 'SIGTERM');
});

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
const ms = (ns) => Math.round(ns / 1e4) / 100;

process.on('message', (m) => {
  if (m?.type === 'probe-reset') eld.reset();
  else if (m?.type === 'probe' && process.connected) {
    process.send({ type: 'probe', eld: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max) } });
  }
});
