// Preloaded (`node --import`) into every process the bench forks, the hub included: when the
// bench's IPC channel closes (the bench exited or was killed, even with SIGKILL), end this
// process too, so no hub or simulated fleet is ever left behind. SIGTERM first (the hub shuts
// down gracefully on it), a hard exit shortly after.
process.on('disconnect', () => {
  setTimeout(() => process.exit(1), 5000).unref();
  process.kill(process.pid, 'SIGTERM');
});
