/**
 * The full suite's sections, in the order they run. A section is one object:
 *
 *   {
 *     id: 'fanout',                        // key in results.sections, name for --only / --skip
 *     title: 'Fan-out by tag',
 *     spec: 'the line of SPEC.md it checks',
 *     uses: ['fleet'],                     // optional: the shared N-satellite hub (ctx.fleet())
 *     timeoutMs: (ctx) => 120_000,         // hard bound; the section fails when it is exceeded
 *     async run(ctx) { return { target, pass, status?, ...figures }; },
 *   }
 *
 * `pass` is true/false against the target (null: nothing to judge, e.g. a baseline); use
 * `verdict()` from ./common.js, which also marks a figure measured below the target's scale.
 * Adding a section is adding one such object here. Slots kept for sections others will add:
 * TLS memory (hub RSS per satellite with TLS terminated in the hub, < 45 KB) and two hub
 * instances + Redis holding 20,000 satellites.
 */
import agent from './agent.js';
import baseline from './baseline.js';
import cluster from './cluster.js';
import connect from './connect.js';
import fanout from './fanout.js';
import rest from './rest.js';
import restart from './restart.js';
import rtt from './rtt.js';
import sessions from './sessions.js';
import tls from './tls.js';

export const SECTIONS = [
  baseline, // the bare ws relay first, alone on the machine: the floor for connect and fan-out
  connect,
  rtt,
  fanout,
  restart, // last user of the shared fleet: it SIGKILLs the hub
  rest,
  sessions,
  agent,
  tls, // hub RSS per satellite with TLS terminated in the hub (< 45 KB)
  cluster, // two instances + Redis hold 2×N (20,000 at the default N)
];
