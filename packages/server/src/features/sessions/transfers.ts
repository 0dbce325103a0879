import { createHash, randomUUID } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { HiveError, type StreamEndpoint } from '@hive/protocol';
import type { Bus } from '../../bus/bus.js';
import { newId } from '../../lib/ids.js';
import { type Principal, requireProject, requireScope } from '../../lib/principal.js';
import { type ApprovalsConfig, approvalReason } from '../approvals/approval-policy.js';
import type { ApprovalsService } from '../approvals/approvals-service.js';
import type { AuditService } from '../audit/audit-service.js';
import type { HubSigner } from '../commands/hub-key.js';
import type { SatelliteView } from '../devices/devices-store.js';
import { requireApproval, type WaitHooks } from './approval-wait.js';

const TRANSFER_TIMEOUT_MS = 3_600_000;

/**
 * File transfer over binary streams (`hive cp`): uploads stream the request body to the node
 * (`file.push`), downloads stream the node's file into the response (`file.pull`). Both are paced
 * by stream credit end to end; sha256 is checked by the node (push) and by the hub and the client
 * (pull). The node's own path policy decides what may be read or written.
 */
export function transfersFactory(deps: {
  bus: Bus;
  audit: Pick<AuditService, 'log'>;
  signer: HubSigner;
  resolveSatellite: (p: Principal, ref: string) => Promise<SatelliteView>;
  policy: ApprovalsConfig;
  approvals: ApprovalsService;
}) {
  const { bus, audit, signer } = deps;

  function reachable(sat: SatelliteView): void {
    if (!bus.isNodeConnected(sat.id)) throw new HiveError('SATELLITE_OFFLINE', `Satellite ${sat.slug} is not connected`);
    if (!bus.openNodeStream) throw new HiveError('SERVICE_NOT_RUNNING', 'This hub cannot carry streams to satellites');
  }

  /**
   * Claim, policy and reachability checks. When the approval policy asks for a person (file.write
   * does by default), a real approval is requested and the transfer waits for its decision.
   */
  async function admit(
    p: Principal,
    ref: string,
    claim: 'file.read' | 'file.write',
    params: { path: string; size?: number; sha256?: string | undefined; mode?: string | undefined },
    hooks: WaitHooks,
  ): Promise<SatelliteView> {
    const sat = await deps.resolveSatellite(p, ref);
    requireProject(p, sat, claim === 'file.write' ? 'write' : 'read');
    if (!sat.commands.includes(claim)) throw new HiveError('UNKNOWN_COMMAND', `Satellite ${sat.slug} does not serve ${claim} (its policy turns it off)`);
    if (!sat.approved_commands.includes(claim))
      throw new HiveError('CLAIM_NOT_APPROVED', `Satellite ${sat.slug} claims ${claim}, but no operator approved that claim yet`);
    reachable(sat);
    const reason = approvalReason(deps.policy, { command: claim, params: { path: params.path }, satellite: sat, source: 'api' });
    if (reason) {
      const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
      try {
        const a = await requireApproval(
          { approvals: deps.approvals },
          p,
          { id: newId('xfr'), satellite_id: sat.id, command: claim, params: clean },
          reason,
          hooks,
        );
        audit.log({
          actor: p,
          action: claim === 'file.write' ? 'file.push_approved' : 'file.pull_approved',
          target: { type: 'satellite', id: sat.id },
          details: { path: params.path, approval_id: a.id },
          result: 'success',
        });
      } catch (err) {
        const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
        audit.log({
          actor: p,
          action: claim === 'file.write' ? 'file.pushed' : 'file.pulled',
          target: { type: 'satellite', id: sat.id },
          details: { path: params.path, ...(e.details?.approval_id ? { approval_id: e.details.approval_id } : {}) },
          result: 'failure',
          error: e.message,
        });
        throw e;
      }
      // The satellite may have gone while the approval waited.
      reachable(sat);
    }
    return sat;
  }

  function invoke(sat: SatelliteView, command: string, params: Record<string, unknown>) {
    const now = Date.now();
    const inv = signer.sign({ command, params, correlationId: randomUUID(), target: sat.id, issuedAt: now, deadline: now + TRANSFER_TIMEOUT_MS });
    return bus.invokeNode(sat.id, inv, TRANSFER_TIMEOUT_MS + 5000);
  }

  return {
    /** Streams `body` (exactly `size` bytes) to `path` on the satellite. */
    async push(
      p: Principal,
      ref: string,
      req: { path: string; size: number; body: Readable; sha256?: string | undefined; mode?: 'overwrite' | 'create' | undefined },
      hooks: WaitHooks = {},
    ): Promise<{ satellite_id: string; path: string; bytes: number; sha256: string; created: boolean }> {
      requireScope(p, 'operator.write');
      const sat = await admit(p, ref, 'file.write', { path: req.path, size: req.size, sha256: req.sha256, mode: req.mode ?? 'overwrite' }, hooks);
      const hash = createHash('sha256');
      let stream: StreamEndpoint | undefined;
      let sent = 0;
      stream = (bus.openNodeStream as NonNullable<Bus['openNodeStream']>)(sat.id, {
        onDrain: () => req.body.resume(),
        onClose: ({ aborted }) => {
          if (aborted) req.body.destroy();
        },
      });
      const result = invoke(sat, 'file.push', { path: req.path, size: req.size, stream_id: stream.id, mode: req.mode ?? 'overwrite' });
      req.body.on('data', (c: Buffer) => {
        sent += c.length;
        hash.update(c);
        if (!stream?.write(c)) req.body.pause();
      });
      let ended = false;
      req.body.on('end', () => {
        ended = true;
        const digest = hash.digest('hex');
        if (req.sha256 && req.sha256.toLowerCase() !== digest) stream?.abort('checksum mismatch');
        else if (sent !== req.size) stream?.abort('size mismatch');
        else stream?.end(`sha256:${digest}`);
      });
      // A client that goes away mid-upload: the node drops its temp file.
      req.body.on('error', () => stream?.abort('upload interrupted'));
      req.body.on('close', () => {
        if (!ended) stream?.abort('upload interrupted');
      });
      try {
        const r = (await result) as { path: string; bytes: number; sha256: string; created: boolean };
        if (req.sha256 && r.sha256 !== req.sha256.toLowerCase()) throw new HiveError('INVALID_PARAMETERS', 'checksum mismatch');
        audit.log({
          actor: p,
          action: 'file.pushed',
          target: { type: 'satellite', id: sat.id },
          details: { path: req.path, bytes: r.bytes, sha256: r.sha256 },
          result: 'success',
        });
        return { satellite_id: sat.id, path: r.path, bytes: r.bytes, sha256: r.sha256, created: r.created };
      } catch (err) {
        if (stream && !stream.isClosed) stream.abort('failed');
        req.body.resume();
        const e = err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', (err as Error).message);
        audit.log({
          actor: p,
          action: 'file.pushed',
          target: { type: 'satellite', id: sat.id },
          details: { path: req.path },
          result: 'failure',
          error: e.message,
        });
        throw e;
      }
    },

    /** Opens a download; the body ends with an error when the bytes do not hash to `sha256`. */
    async pull(
      p: Principal,
      ref: string,
      filePath: string,
      hooks: WaitHooks = {},
    ): Promise<{ size: number; sha256: string; body: Readable; satellite_id: string }> {
      requireScope(p, 'operator.read');
      const sat = await admit(p, ref, 'file.read', { path: filePath }, hooks);
      const body = new PassThrough();
      // The HTTP reply reports a failed transfer by cutting the response; nothing else listens.
      body.on('error', () => {});
      const hash = createHash('sha256');
      let received = 0;
      const stream = (bus.openNodeStream as NonNullable<Bus['openNodeStream']>)(
        sat.id,
        {
          onData: (chunk) => {
            received += chunk.length;
            hash.update(chunk);
            // Credit back only when the HTTP client takes the bytes: a slow client slows the node.
            if (body.write(Buffer.from(chunk))) stream.consumed(chunk.length);
            else body.once('drain', () => stream.consumed(chunk.length));
          },
          onClose: ({ reason, aborted }) => {
            const expected = /^sha256:([0-9a-f]{64})$/.exec(reason)?.[1];
            const digest = hash.digest('hex');
            if (aborted || !expected || expected !== digest)
              body.destroy(new HiveError('INTERNAL_ERROR', `transfer failed: ${aborted ? reason : 'checksum mismatch'}`));
            else body.end();
            audit.log({
              actor: p,
              action: 'file.pulled',
              target: { type: 'satellite', id: sat.id },
              details: { path: filePath, bytes: received, sha256: digest },
              result: !aborted && expected === digest ? 'success' : 'failure',
            });
          },
        },
        { manualCredit: true },
      );
      body.on('close', () => {
        if (!stream.isClosed) stream.abort('client went away');
      });
      try {
        const r = (await invoke(sat, 'file.pull', { path: filePath, stream_id: stream.id })) as { size: number; sha256: string };
        return { size: r.size, sha256: r.sha256, body, satellite_id: sat.id };
      } catch (err) {
        if (!stream.isClosed) stream.abort('failed');
        throw err;
      }
    },
  };
}

export type Transfers = ReturnType<typeof transfersFactory>;
