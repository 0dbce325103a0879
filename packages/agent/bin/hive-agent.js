#!/usr/bin/env node
// Footprint (SPEC: an idle agent under 50 MB RSS and 1 % CPU, ready in under 2 s). V8 flags
// must be set before any other module loads, hence the dynamic import below:
//   --no-turbofan          no optimizing compiler while starting and idling: its code and the
//                          code it makes cost ~4 MB resident; the first file.pull turns it back
//                          on (see src/lib/tiering.ts).
//   --no-sparkplug         no baseline compiler either (~0.5 MB); the first command turns it back on.
//   --optimize-for-size    smaller heap growth steps, more eager memory reduction.
// HIVE_AGENT_V8_FLAGS replaces them ('' = V8 defaults). `hive agent` (the CLI subcommand) runs
// in the CLI's process and does not set them.
import { setFlagsFromString } from 'node:v8';

const custom = process.env.HIVE_AGENT_V8_FLAGS;
setFlagsFromString(custom ?? '--no-turbofan --no-sparkplug --optimize-for-size');
const { deferOptimizingCompiler, parseAgentArgs, runAgent } = await import('../dist/launch.js');
if (custom === undefined) deferOptimizingCompiler();
// The usual `--option value` command line is parsed without commander (src/launch.ts); --help,
// --version and anything else go to the commander command, which answers as `hive agent` does.
const flags = parseAgentArgs(process.argv.slice(2));
if (flags) await runAgent(flags);
else await (await import('../dist/cli.js')).agentCommand('hive-agent').parseAsync(process.argv);
