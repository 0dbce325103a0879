import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerCounts, containerList } from './container-list.js';

/** A fake Docker Engine on a unix socket: /containers/json answers what `reply` says. */
let dir: string;
let socket: string;
let server: Server;
let reply: { status: number; body: string } = { status: 200, body: '[]' };
const requests: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hive-engine-'));
  socket = path.join(dir, 'docker.sock');
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(reply.body);
  });
  await new Promise<void>((r) => server.listen(socket, r));
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

const container = (id: string, State: string) => ({
  Id: `${id}${'0'.repeat(64 - id.length)}`,
  Names: [`/${id}`],
  Image: 'nginx',
  State,
  Status: State,
  Created: 1_700_000_000,
  Labels: {},
});
const cfg = () => ({ socket, allowed_images: [], max_containers: 50 });

describe('status report container counts', () => {
  it('asks the engine what container.list asks it (without dockerode) and counts the same', async () => {
    for (const list of [
      [],
      [container('a', 'running')],
      [container('a', 'running'), container('b', 'exited'), container('c', 'paused'), container('d', 'running'), container('e', 'created')],
    ]) {
      reply = { status: 200, body: JSON.stringify(list) };
      requests.length = 0;
      const counts = await containerCounts(cfg());
      const viaDockerode = await containerList({ all: true, limit: 1 }, cfg());
      expect(counts).toEqual({ total: viaDockerode.total, running: viaDockerode.running, stopped: viaDockerode.stopped });
      expect(requests[0]).toBe(requests[1]);
    }
  });

  it('null when the engine is absent or answers an error or garbage', async () => {
    expect(await containerCounts({ ...cfg(), socket: path.join(dir, 'none.sock') })).toBeNull();
    for (const r of [
      { status: 500, body: '{"message":"boom"}' },
      { status: 200, body: 'not json' },
      { status: 200, body: '{"not":"a list"}' },
    ]) {
      reply = r;
      expect(await containerCounts(cfg())).toBeNull();
    }
  });
});
