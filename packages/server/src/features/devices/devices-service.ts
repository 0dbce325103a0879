import { type ConnectParams, connectSigningPayload, HiveError, type Role, type Scope } from '@hive/protocol';
import { deviceIdFromPublicKey, verifySignature } from '@hive/sdk';
import type { Bus } from '../../bus/bus.js';
import { mintToken, newId, parseToken, safeEqualHex, sha256 } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { requireProject, requireScope, visibleProjects } from '../../lib/principal.js';
import { fromJson, nowIso, toJson } from '../../store/db.js';
import type { AuditService } from '../audit/audit-service.js';
import type { AuthService } from '../auth/auth-service.js';
import type { DevicesStore, SatelliteFilter, SatelliteView } from './devices-store.js';
import { nextFreeSlug, slugify, wordPair } from './slug.js';

export interface PairingConfig {
  autoApproveLoopback: boolean;
  /** How long a pairing request stays pending. */
  requestTtlMs: number;
  maxPendingPerIp: number;
  maxPendingTotal: number;
  /** Device token lifetime in ms; 0 = no expiry. */
  tokenTtlMs: number;
}

export interface HandshakeInput {
  params: ConnectParams;
  nonce: string;
  ip: string;
  loopback: boolean;
}

export interface Authenticated {
  kind: 'ready';
  role: Role;
  deviceId: string | null;
  scopes: Scope[];
  principal: Principal;
  satellite: SatelliteView | null;
  /** New device token, present right after pairing. */
  token?: string;
}

export interface PendingPairing {
  kind: 'pending';
  requestId: string;
  deviceId: string;
  expiresAt: string;
  /** Settles when an operator decides or the request expires. */
  decision: Promise<Authenticated>;
  /** The device went away: stop waiting (the request stays listed until it expires). */
  cancel(): void;
}

const SIGNATURE_SKEW_MS = 120_000;
/** Status reports kept per satellite (a day at the default 30 s interval... minus a bit). */
const STATUS_HISTORY = 2880;

export interface PairingView {
  id: string;
  device_id: string;
  role: Role;
  scopes: string[];
  client: Record<string, unknown>;
  tags: string[];
  remote_ip: string | null;
  status: string;
  auto: boolean;
  created_at: string;
  expires_at: string;
  resolved_at: string | null;
  resolved_by: string | null;
}

/**
 * Device identity, pairing, device tokens, the satellite registry and presence.
 * The WebSocket layer calls `handshake` for every connect; operators call the pairing and
 * registry methods from REST, WS and CLI.
 */
/** Events that announce a change of satellites, their tags, claims or tokens (from any instance). */
const CHANGES = new Set([
  'satellite:online',
  'satellite:offline',
  'satellite:updated',
  'satellite:removed',
  'satellite:claims',
  'pairing:resolved',
  'credentials:revoked',
]);

export const devicesServiceFactory = ({
  store,
  audit,
  auth,
  bus,
  pairing,
  projectExists = async (id: string) => id === 'default',
}: {
  store: DevicesStore;
  audit: Pick<AuditService, 'log'>;
  auth: Pick<AuthService, 'verifyApiKey'>;
  bus: Bus;
  pairing: PairingConfig;
  projectExists?: (id: string) => Promise<boolean>;
}) => {
  type Waiter = { resolve: () => void; reject: (e: HiveError) => void };
  /** Connections waiting on a pairing decision, by request id (a device may retry and wait twice). */
  const waiters = new Map<string, Set<Waiter>>();
  const settle = (id: string, fn: (w: Waiter) => void) => {
    for (const w of waiters.get(id) ?? []) fn(w);
    waiters.delete(id);
  };
  /** In-memory presence: satellites connected to this process, with their last pong. */
  const lastSeen = new Map<string, number>();
  /** Satellite → project, learned whenever a satellite is read; lets the edges filter events per project. */
  const projectCache = new Map<string, string>();
  const instanceId = bus.instanceId ?? 'local';

  /** A decision on a pairing request (here or on another instance) lets the devices waiting on it go. */
  function release(id: string, status: string): void {
    if (status === 'approved') settle(id, (w) => w.resolve());
    else if (status === 'rejected') release(id, 'rejected');
    else if (status === 'expired')
      settle(id, (w) =>
        w.reject(
          new HiveError('PAIRING_REQUIRED', 'Pairing request expired without a decision', { request_id: id }, { action: 'retry', retryAfterMs: 60_000 }),
        ),
      );
  }

  // Scale-out: a decision taken on another instance releases the devices waiting here, and
  // satellites held elsewhere are known by project for event filtering.
  bus.subscribe(({ event, payload, origin }) => {
    if (!origin) return;
    // Changes made by another instance end this instance's cached satellite reads.
    if (CHANGES.has(event)) store.invalidate();
    if (event === 'pairing:resolved') {
      const v = payload as { id: string; status: string };
      release(v.id, v.status);
    } else if (event === 'satellite:online') {
      const v = payload as { id: string; project?: string };
      if (v.project) projectCache.set(v.id, v.project);
    }
  });

  const deviceActor = (deviceId: string, name: string, ip?: string) => ({ type: 'device', id: deviceId, name, ip });

  function verifyDevice(input: HandshakeInput): string {
    const { params, nonce, ip } = input;
    const dev = params.device;
    if (!dev) throw new HiveError('AUTH_REQUIRED', 'Role node needs a device key', undefined, { action: 'abort' });
    let deviceId: string;
    try {
      deviceId = deviceIdFromPublicKey(dev.publicKey);
    } catch {
      throw new HiveError('AUTH_INVALID', 'Malformed device public key', undefined, { action: 'abort' });
    }
    const fail = (reason: string, message: string, retryAfterMs = 30_000) => {
      audit.log({
        actor: deviceActor(deviceId, params.client.hostname ?? params.client.name, ip),
        action: 'device.auth_failed',
        target: { type: 'device', id: deviceId },
        details: { reason, role: params.role },
        result: 'failure',
        error: message,
      });
      return new HiveError('AUTH_INVALID', message, { reason }, { action: 'retry', retryAfterMs });
    };
    if (Math.abs(Date.now() - dev.signedAt) > SIGNATURE_SKEW_MS) {
      throw fail('stale_signature', 'Signature timestamp outside the allowed clock skew (check the device clock)');
    }
    const payload = connectSigningPayload({ nonce, deviceId, role: params.role, scopes: params.scopes, signedAt: dev.signedAt });
    if (!verifySignature(dev.publicKey, payload, dev.signature)) throw fail('bad_signature', 'Device signature does not verify for this connection');
    return deviceId;
  }

  async function authenticateToken(input: HandshakeInput, deviceId: string, token: string): Promise<Authenticated> {
    const { params, ip } = input;
    const name = params.client.hostname ?? params.client.name;
    const refuse = (reason: string, message: string) => {
      audit.log({
        actor: deviceActor(deviceId, name, ip),
        action: 'device.auth_failed',
        target: { type: 'device', id: deviceId },
        details: { reason, role: params.role },
        result: 'failure',
        error: message,
      });
      // The stored token is useless: drop it and pair again.
      return new HiveError('AUTH_INVALID', message, { reason }, { action: 'repair' });
    };
    const parsed = parseToken('hdt', token);
    const row = parsed ? await store.getToken(parsed.id) : undefined;
    if (!row || !safeEqualHex(row.token_hash, sha256(token))) throw refuse('unknown_token', 'Unknown device token');
    if (row.revoked_at) throw refuse('revoked_token', 'Device token revoked');
    if (row.expires_at && row.expires_at < nowIso()) throw refuse('expired_token', 'Device token expired');
    if (row.device_id !== deviceId) throw refuse('key_mismatch', 'Token is bound to another device key');
    if (row.role !== params.role) throw refuse('role_mismatch', `Token is for role ${row.role}`);
    const device = await store.getDevice(deviceId);
    if (!device || device.public_key !== params.device?.publicKey) throw refuse('key_mismatch', 'Token is bound to another device key');
    void store.touchToken(row.id);
    return ready(input, deviceId, fromJson<Scope[]>(row.scopes, []));
  }

  async function ready(input: HandshakeInput, deviceId: string, granted: Scope[], token?: string): Promise<Authenticated> {
    const { params } = input;
    const scopes = params.role === 'operator' ? params.scopes.filter((s) => granted.includes(s)) : [];
    let satellite: SatelliteView | null = null;
    if (params.role === 'node') {
      satellite = (await store.getSatellite(deviceId)) ?? null;
      if (!satellite) {
        // Token valid but the row is gone (deleted satellite): pair again.
        throw new HiveError('PAIRING_REQUIRED', 'Satellite was removed; pairing again', undefined, { action: 'repair' });
      }
    }
    const principal: Principal = {
      type: 'device',
      id: deviceId,
      name: satellite?.slug ?? params.client.hostname ?? params.client.name,
      scopes: new Set(scopes),
      ip: input.ip,
    };
    return { kind: 'ready', role: params.role, deviceId, scopes, principal, satellite, ...(token ? { token } : {}) };
  }

  async function createSatellite(deviceId: string, params: ConnectParams, tags: string[]): Promise<void> {
    if (await store.getSatellite(deviceId)) return;
    const label = params.client.displayName || params.client.hostname || '';
    const base = slugify(label) || wordPair();
    for (let attempt = 0; attempt < 20; attempt++) {
      const slug = nextFreeSlug(base, await store.slugsLike(base));
      const now = nowIso();
      try {
        await store.insertSatellite(
          {
            id: deviceId,
            slug,
            name: label || slug,
            hostname: params.client.hostname ?? null,
            os: params.client.platform ?? null,
            os_release: params.client.osRelease ?? null,
            arch: params.client.arch ?? null,
            agent_version: params.client.version,
            project: 'default',
            status: 'offline',
            commands: toJson(params.commands),
            // The operator who approved the pairing (or loopback policy) accepted these claims.
            approved_commands: toJson(params.commands),
            policy: toJson(params.policy ?? {}),
            remote_ip: null,
            last_seen: null,
            created_at: now,
            updated_at: now,
          },
          tags,
        );
        return;
      } catch (err) {
        if (await store.getSatellite(deviceId)) return;
        if (attempt === 19) throw err;
      }
    }
  }

  /** Hands out the device token for an approved pairing request (once). */
  async function issueToken(input: HandshakeInput, deviceId: string, requestId: string): Promise<Authenticated | null> {
    if (!(await store.claimTokenIssue(requestId))) return null;
    const req = await store.getPairing(requestId);
    if (!req) return null;
    const { params } = input;
    const scopes = fromJson<Scope[]>(req.scopes, []);
    await store.ensureDevice(deviceId, req.public_key);
    if (params.role === 'node') await createSatellite(deviceId, params, fromJson<string[]>(req.tags, []));
    const minted = mintToken('hdt');
    await store.insertToken({
      id: minted.id,
      device_id: deviceId,
      role: params.role,
      token_hash: minted.hash,
      scopes: toJson(scopes),
      created_at: nowIso(),
      expires_at: pairing.tokenTtlMs > 0 ? new Date(Date.now() + pairing.tokenTtlMs).toISOString() : null,
      revoked_at: null,
      last_used_at: null,
    });
    // One live token per device and role: pairing again replaces the old one.
    await store.revokeTokens(deviceId, params.role, minted.id);
    audit.log({
      actor: deviceActor(deviceId, params.client.hostname ?? params.client.name, input.ip),
      action: 'device.token_issued',
      target: { type: 'device', id: deviceId },
      details: { role: params.role, token_id: minted.id, pairing_request: requestId },
      result: 'success',
    });
    return ready(input, deviceId, scopes, minted.token);
  }

  async function requestPairing(input: HandshakeInput, deviceId: string): Promise<Authenticated | PendingPairing> {
    const { params, ip, loopback } = input;
    const name = params.client.hostname ?? params.client.name;
    const publicKey = params.device?.publicKey ?? '';
    // A device that already has an approved, not yet collected request gets its token now.
    const approved = await store.findPairing(deviceId, params.role, 'approved');
    if (approved && approved.token_issued === 0 && approved.public_key === publicKey) {
      const done = await issueToken(input, deviceId, approved.id);
      if (done) return done;
    }
    // Silent pairing is for the local machine's own agent only: operator scopes always need a person.
    const autoApprove = loopback && pairing.autoApproveLoopback && params.role === 'node';
    let req = await store.findPairing(deviceId, params.role, 'pending');
    if (req && req.public_key !== publicKey) req = undefined;
    if (!req) {
      if (!autoApprove) {
        if ((await store.countPending(ip)) >= pairing.maxPendingPerIp || (await store.countPending()) >= pairing.maxPendingTotal) {
          audit.log({
            actor: deviceActor(deviceId, name, ip),
            action: 'pairing.rate_limited',
            target: { type: 'device', id: deviceId },
            result: 'failure',
            error: 'too many pending pairing requests',
          });
          throw new HiveError('RATE_LIMITED', 'Too many pending pairing requests', undefined, { action: 'retry', retryAfterMs: 60_000 });
        }
      }
      const now = Date.now();
      const row = {
        id: newId('pr'),
        device_id: deviceId,
        public_key: publicKey,
        role: params.role,
        scopes: toJson(params.scopes),
        client: toJson(params.client),
        tags: toJson(params.tags ?? []),
        remote_ip: ip,
        status: 'pending' as const,
        auto: autoApprove ? 1 : 0,
        token_issued: 0,
        created_at: new Date(now).toISOString(),
        expires_at: new Date(now + pairing.requestTtlMs).toISOString(),
        resolved_at: null,
        resolved_by: null,
      };
      await store.insertPairing(row);
      req = { ...row };
      audit.log({
        actor: deviceActor(deviceId, name, ip),
        action: 'pairing.requested',
        target: { type: 'device', id: deviceId },
        details: { request_id: row.id, role: params.role, scopes: params.scopes, loopback },
        result: 'success',
      });
      if (autoApprove) {
        await store.resolvePairing(row.id, 'approved', 'auto:loopback');
        audit.log({
          actor: { type: 'system', id: 'hub', name: 'hub' },
          action: 'pairing.auto_approved',
          target: { type: 'device', id: deviceId },
          details: { request_id: row.id, role: params.role, reason: 'loopback' },
          result: 'success',
          sourceIp: ip,
        });
        const done = await issueToken(input, deviceId, row.id);
        if (done) return done;
        throw new HiveError('CONFLICT', 'Pairing raced with another connection', undefined, { action: 'retry', retryAfterMs: 1000 });
      }
      bus.publish('pairing:requested', toView(row));
    }
    const requestId = req.id;
    let cancelled = false;
    let me: Waiter | undefined;
    const decision = new Promise<void>((resolve, reject) => {
      me = { resolve, reject };
      const set = waiters.get(requestId) ?? new Set<Waiter>();
      set.add(me);
      waiters.set(requestId, set);
    }).then(async () => {
      if (cancelled) throw new HiveError('PAIRING_REQUIRED', 'cancelled');
      const done = await issueToken(input, deviceId, requestId);
      if (!done) throw new HiveError('CONFLICT', 'Token for this pairing was already handed out', undefined, { action: 'retry', retryAfterMs: 1000 });
      return done;
    });
    decision.catch(() => {});
    return {
      kind: 'pending',
      requestId,
      deviceId,
      expiresAt: req.expires_at,
      decision,
      cancel() {
        cancelled = true;
        if (!me) return;
        waiters.get(requestId)?.delete(me);
        me.reject(new HiveError('PAIRING_REQUIRED', 'cancelled'));
      },
    };
  }

  function toView(r: {
    id: string;
    device_id: string;
    role: string;
    scopes: string;
    client: string;
    tags: string;
    remote_ip: string | null;
    status: string;
    auto: number;
    created_at: string;
    expires_at: string;
    resolved_at: string | null;
    resolved_by: string | null;
  }): PairingView {
    return {
      id: r.id,
      device_id: r.device_id,
      role: r.role as Role,
      scopes: fromJson(r.scopes, []),
      client: fromJson(r.client, {}),
      tags: fromJson(r.tags, []),
      remote_ip: r.remote_ip,
      status: r.status,
      auto: r.auto === 1,
      created_at: r.created_at,
      expires_at: r.expires_at,
      resolved_at: r.resolved_at,
      resolved_by: r.resolved_by,
    };
  }

  async function resolveRef(ref: string): Promise<SatelliteView> {
    const found = await store.findByRef(ref);
    if (found.length > 1)
      throw new HiveError('AMBIGUOUS', `Name ${ref} matches ${found.length} satellites; use the id or slug`, { matches: found.map((r) => r.slug) });
    const sat = found[0];
    if (!sat) throw new HiveError('SATELLITE_NOT_FOUND', `Satellite ${ref} not found`, { satellite: ref });
    projectCache.set(sat.id, sat.project);
    return sat;
  }

  // Presence writes of one device run in the order they were asked for: after a quick reconnect
  // the old connection's "offline" must not land after the new one's "online" (on PostgreSQL the
  // two go through different pool connections).
  const presenceQueue = new Map<string, Promise<unknown>>();
  function inOrder<T>(deviceId: string, fn: () => Promise<T>): Promise<T> {
    const next = (presenceQueue.get(deviceId) ?? Promise.resolve()).then(fn, fn);
    presenceQueue.set(deviceId, next);
    const done = () => {
      if (presenceQueue.get(deviceId) === next) presenceQueue.delete(deviceId);
    };
    void next.then(done, done);
    return next;
  }

  async function markOnlineNow(a: Authenticated & { deviceId: string }, params: ConnectParams, ip: string): Promise<SatelliteView | null> {
    const now = nowIso();
    const presence = {
      status: 'online' as const,
      last_seen: now,
      remote_ip: ip,
      hostname: params.client.hostname ?? null,
      os: params.client.platform ?? null,
      os_release: params.client.osRelease ?? null,
      arch: params.client.arch ?? null,
      agent_version: params.client.version,
    };
    // The handshake has just read the row: the write updates that cached view (no new read for
    // each of the 10,000 connects after a hub restart; the satellite's first exec finds it).
    const written = await store.setPresence(a.deviceId, {
      ...presence,
      instance_id: instanceId,
      commands: toJson(params.commands),
      policy: toJson(params.policy ?? {}),
    });
    lastSeen.set(a.deviceId, Date.now());
    const sat = written ?? (await store.getSatellite(a.deviceId)) ?? null;
    if (sat) projectCache.set(sat.id, sat.project);
    audit.log({
      actor: a.principal,
      action: 'satellite.connected',
      target: { type: 'satellite', id: a.deviceId },
      details: { agent_version: params.client.version },
      result: 'success',
      sourceIp: ip,
    });
    if (sat)
      bus.publish('satellite:online', {
        id: sat.id,
        slug: sat.slug,
        name: sat.name,
        project: sat.project,
        system: { hostname: sat.hostname, os: sat.os, arch: sat.arch },
      });
    if (sat?.pending_claims.length) {
      // New capabilities need a person's yes before the hub routes them (seed 001).
      audit.log({
        actor: a.principal,
        action: 'satellite.claims_pending',
        target: { type: 'satellite', id: sat.id },
        details: { pending: sat.pending_claims },
        result: 'success',
      });
      bus.publish('satellite:claims', { id: sat.id, slug: sat.slug, pending: sat.pending_claims });
    }
    return sat;
  }

  async function markOfflineNow(a: Authenticated & { deviceId: string }, reason: string): Promise<void> {
    const seen = new Date(lastSeen.get(a.deviceId) ?? Date.now()).toISOString();
    lastSeen.delete(a.deviceId);
    // Only while this instance still holds it: the satellite may already be back on another one.
    const changed = await store.setOfflineIfHeldBy(a.deviceId, instanceId, seen);
    audit.log({
      actor: a.principal,
      action: 'satellite.disconnected',
      target: { type: 'satellite', id: a.deviceId },
      details: { reason, ...(changed ? {} : { reconnected_elsewhere: true }) },
      result: 'success',
    });
    if (changed) bus.publish('satellite:offline', { id: a.deviceId, last_seen: seen, reason });
  }

  async function devicesSweep(): Promise<void> {
    for (const id of await store.expirePairing(nowIso())) {
      audit.log({ actor: { type: 'system', id: 'hub', name: 'hub' }, action: 'pairing.expired', target: { type: 'pairing_request', id }, result: 'success' });
      release(id, 'expired');
      bus.publish('pairing:resolved', { id, status: 'expired' });
    }
  }

  return {
    /** Authenticates a `connect`: device signature, token, API key, or pairing. */
    async handshake(input: HandshakeInput): Promise<Authenticated | PendingPairing> {
      const { params, ip } = input;
      if (params.role === 'operator' && params.auth.apiKey) {
        let principal: Principal;
        try {
          principal = await auth.verifyApiKey(params.auth.apiKey, ip);
        } catch (err) {
          // The database being away is no reason to tell a client its credentials are bad.
          if (!(err instanceof HiveError)) {
            throw new HiveError('INTERNAL_ERROR', 'Cannot check credentials right now', undefined, { action: 'retry', retryAfterMs: 2000 });
          }
          audit.log({
            actor: { type: 'api_key', id: 'unknown', name: 'unknown', ip },
            action: 'operator.auth_failed',
            details: { reason: (err as HiveError).message },
            result: 'failure',
          });
          throw new HiveError('AUTH_INVALID', (err as HiveError).message, undefined, { action: 'reauth' });
        }
        const held = [...principal.scopes];
        const wanted = params.scopes.length ? params.scopes : held;
        const scopes = held.includes('operator.admin') ? wanted : wanted.filter((s) => held.includes(s));
        const deviceId = params.device ? verifyDevice(input) : null;
        return { kind: 'ready', role: 'operator', deviceId, scopes, principal: { ...principal, scopes: new Set(scopes) }, satellite: null };
      }
      const deviceId = verifyDevice(input);
      if (params.auth.token) return authenticateToken(input, deviceId, params.auth.token);
      return requestPairing(input, deviceId);
    },

    async listPairing(p: Principal, status?: PairingView['status']): Promise<PairingView[]> {
      requireScope(p, 'operator.pairing');
      return (await store.listPairing(status as 'pending' | undefined)).map(toView);
    },

    async approvePairing(p: Principal, id: string): Promise<PairingView> {
      requireScope(p, 'operator.pairing');
      const req = await store.getPairing(id);
      if (!req) throw new HiveError('NOT_FOUND', `Pairing request ${id} not found`);
      if (req.status === 'pending' && req.expires_at < nowIso()) {
        await devicesSweep();
        throw new HiveError('ALREADY_RESOLVED', `Pairing request ${id} expired`, { status: 'expired' });
      }
      if (!(await store.resolvePairing(id, 'approved', `${p.type}:${p.id}`))) {
        throw new HiveError('ALREADY_RESOLVED', `Pairing request ${id} is already ${req.status}`, { status: req.status });
      }
      audit.log({
        actor: p,
        action: 'pairing.approved',
        target: { type: 'device', id: req.device_id },
        details: { request_id: id, role: req.role, scopes: fromJson(req.scopes, []) },
        result: 'success',
      });
      const after = (await store.getPairing(id)) ?? req;
      bus.publish('pairing:resolved', toView(after));
      release(id, 'approved');
      return toView(after);
    },

    async rejectPairing(p: Principal, id: string): Promise<PairingView> {
      requireScope(p, 'operator.pairing');
      const req = await store.getPairing(id);
      if (!req) throw new HiveError('NOT_FOUND', `Pairing request ${id} not found`);
      if (!(await store.resolvePairing(id, 'rejected', `${p.type}:${p.id}`))) {
        throw new HiveError('ALREADY_RESOLVED', `Pairing request ${id} is already ${req.status}`, { status: req.status });
      }
      audit.log({
        actor: p,
        action: 'pairing.rejected',
        target: { type: 'device', id: req.device_id },
        details: { request_id: id, role: req.role },
        result: 'success',
      });
      const after = (await store.getPairing(id)) ?? req;
      bus.publish('pairing:resolved', toView(after));
      settle(id, (w) => w.reject(new HiveError('PAIRING_REJECTED', 'Pairing request was rejected by an operator', { request_id: id }, { action: 'abort' })));
      return toView(after);
    },

    /** Expires stale pending requests; their waiting devices are told to retry later. */
    sweepPairing: () => devicesSweep(),

    // ----------------------------------------------------------------- registry
    resolveRef,
    /** The project of a satellite this process has seen (undefined: unknown — treat as invisible). */
    projectOf: (satelliteId: string): string | undefined => projectCache.get(satelliteId),
    async listSatellites(p: Principal, f: SatelliteFilter) {
      requireScope(p, 'operator.read');
      return store.listSatellites({ ...f, projects: visibleProjects(p) });
    },
    async getSatellite(p: Principal, ref: string) {
      requireScope(p, 'operator.read');
      const sat = await resolveRef(ref);
      requireProject(p, sat, 'read');
      return sat;
    },
    async updateSatellite(p: Principal, ref: string, patch: { name?: string | undefined; tags?: string[] | undefined; project?: string | undefined }) {
      requireScope(p, 'operator.write');
      const sat = await resolveRef(ref);
      requireProject(p, sat, 'write');
      if (patch.project !== undefined && patch.project !== sat.project) {
        // Moving between tenants is for administrators not bound to projects.
        if (p.projects || !p.scopes.has('operator.admin')) throw new HiveError('FORBIDDEN', 'Only a global administrator moves satellites between projects');
        if (!(await projectExists(patch.project))) throw new HiveError('NOT_FOUND', `Project ${patch.project} not found`);
      }
      await store.updateSatellite(
        sat.id,
        { ...(patch.name ? { name: patch.name } : {}), ...(patch.project ? { project: patch.project } : {}) },
        patch.tags ? [...new Set(patch.tags)] : undefined,
      );
      const after = await resolveRef(sat.id);
      audit.log({
        actor: p,
        action: 'satellite.updated',
        target: { type: 'satellite', id: sat.id },
        details: { before: { name: sat.name, tags: sat.tags }, after: { name: after.name, tags: after.tags } },
        result: 'success',
      });
      bus.publish('satellite:updated', after);
      return after;
    },
    async deleteSatellite(p: Principal, ref: string) {
      requireScope(p, 'operator.write');
      const sat = await resolveRef(ref);
      requireProject(p, sat, 'write');
      await store.deleteSatellite(sat.id);
      lastSeen.delete(sat.id);
      bus.closeNode(sat.id, 4007, 'satellite removed');
      audit.log({
        actor: p,
        action: 'satellite.deleted',
        target: { type: 'satellite', id: sat.id },
        details: { slug: sat.slug, name: sat.name, revoked_roles: ['node'] },
        result: 'success',
      });
      bus.publish('satellite:removed', { id: sat.id, slug: sat.slug });
      return { id: sat.id, deleted: true };
    },
    /** Revokes a device's token for one role and cuts its live connection of that role at once. */
    async revokeDevice(p: Principal, deviceId: string, role: Role): Promise<{ device_id: string; role: Role; revoked: number }> {
      requireScope(p, 'operator.admin');
      const n = await store.revokeTokens(deviceId, role);
      if (n === 0) throw new HiveError('NOT_FOUND', `Device ${deviceId} holds no live ${role} token`);
      if (role === 'node') bus.closeNode(deviceId, 4007, 'device token revoked');
      else bus.publish('credentials:revoked', { principal_id: deviceId });
      audit.log({ actor: p, action: 'device.token_revoked', target: { type: 'device', id: deviceId }, details: { role, tokens: n }, result: 'success' });
      return { device_id: deviceId, role, revoked: n };
    },

    /**
     * Issues a new token to a connected node and revokes the old one once the node stored the
     * new one — no re-pairing, no restart.
     */
    async rotateDevice(p: Principal, deviceId: string, role: Role): Promise<{ device_id: string; role: Role; token_id: string }> {
      requireScope(p, 'operator.admin');
      if (role !== 'node') throw new HiveError('INVALID_PARAMETERS', 'Only node tokens can be rotated live; revoke operator tokens instead');
      if (!bus.isNodeConnected(deviceId)) throw new HiveError('SATELLITE_OFFLINE', 'The device must be connected to receive its new token');
      const current = await store.liveTokens(deviceId, role);
      if (current.length === 0) throw new HiveError('NOT_FOUND', `Device ${deviceId} holds no live ${role} token`);
      const minted = mintToken('hdt');
      await store.insertToken({
        id: minted.id,
        device_id: deviceId,
        role,
        token_hash: minted.hash,
        scopes: current[0]?.scopes ?? '[]',
        created_at: nowIso(),
        expires_at: pairing.tokenTtlMs > 0 ? new Date(Date.now() + pairing.tokenTtlMs).toISOString() : null,
        revoked_at: null,
        last_used_at: null,
      });
      try {
        await bus.requestNode(deviceId, 'token.rotate', { token: minted.token }, 10_000);
      } catch (err) {
        await store.revokeTokens(deviceId, role, undefined, undefined, minted.id);
        throw err instanceof HiveError ? err : new HiveError('INTERNAL_ERROR', 'The device did not store its new token');
      }
      await store.revokeTokens(deviceId, role, minted.id);
      audit.log({
        actor: p,
        action: 'device.token_rotated',
        target: { type: 'device', id: deviceId },
        details: { role, token_id: minted.id },
        result: 'success',
      });
      return { device_id: deviceId, role, token_id: minted.id };
    },

    async approveClaims(p: Principal, ref: string, commands?: string[]) {
      requireScope(p, 'operator.admin');
      const sat = await resolveRef(ref);
      requireProject(p, sat, 'write');
      const accept = commands ?? sat.pending_claims;
      const unknown = accept.filter((c) => !sat.commands.includes(c));
      if (unknown.length) throw new HiveError('INVALID_PARAMETERS', `Not claimed by ${sat.slug}: ${unknown.join(', ')}`, { unknown });
      const approved = [...new Set([...sat.approved_commands, ...accept])].sort();
      await store.setPresence(sat.id, { approved_commands: toJson(approved) });
      audit.log({ actor: p, action: 'satellite.claims_approved', target: { type: 'satellite', id: sat.id }, details: { approved: accept }, result: 'success' });
      const after = await resolveRef(sat.id);
      bus.publish('satellite:updated', after);
      return after;
    },
    async resolveTargets(t: { satellites?: string[] | undefined; tag?: string | undefined }): Promise<SatelliteView[]> {
      const ids: string[] = [];
      for (const ref of t.satellites ?? []) ids.push((await resolveRef(ref)).id);
      return store.byIdsOrTag(ids, t.tag);
    },
    async recordStatus(a: Authenticated, report: Record<string, unknown>): Promise<{ stored: true }> {
      if (a.role !== 'node' || !a.deviceId) throw new HiveError('FORBIDDEN', 'Only nodes report status');
      const ts = nowIso();
      await store.recordStatus(a.deviceId, ts, toJson(report), STATUS_HISTORY);
      lastSeen.set(a.deviceId, Date.now());
      bus.publish('satellite:metrics', { id: a.deviceId, ts, metrics: report });
      return { stored: true };
    },
    async statusHistory(p: Principal, ref: string, limit: number) {
      requireScope(p, 'operator.read');
      const sat = await resolveRef(ref);
      requireProject(p, sat, 'read');
      const history = await store.statusHistory(sat.id, limit);
      return { satellite_id: sat.id, latest: history[0] ?? null, history };
    },
    async listTags(p: Principal) {
      requireScope(p, 'operator.read');
      return store.allTags();
    },

    // ----------------------------------------------------------------- presence
    markOnline(a: Authenticated, params: ConnectParams, ip: string): Promise<SatelliteView | null> {
      if (!a.deviceId || a.role !== 'node') return Promise.resolve(null);
      return inOrder(a.deviceId, () => markOnlineNow(a as Authenticated & { deviceId: string }, params, ip));
    },
    heartbeat(satelliteId: string): void {
      if (lastSeen.has(satelliteId)) lastSeen.set(satelliteId, Date.now());
    },
    markOffline(a: Authenticated, reason: string): Promise<void> {
      if (!a.deviceId || a.role !== 'node') return Promise.resolve();
      return inOrder(a.deviceId, () => markOfflineNow(a as Authenticated & { deviceId: string }, reason));
    },
    /** Scale-out: satellites a dead instance held go offline (unless they are back elsewhere already). */
    async releaseInstance(deadInstance: string): Promise<number> {
      const ids = await store.setOfflineForInstance(deadInstance);
      for (const id of ids) {
        audit.log({
          actor: { type: 'system', id: 'hub', name: 'hub' },
          action: 'satellite.disconnected',
          target: { type: 'satellite', id },
          details: { reason: 'hub instance lost', instance: deadInstance },
          result: 'success',
        });
        bus.publish('satellite:offline', { id, reason: 'hub instance lost' });
      }
      return ids.length;
    },
    /** Persists last_seen of the satellites held by this process (of `ids` only, when given; each heartbeat tick does its share). */
    async flushPresence(ids?: readonly string[]): Promise<void> {
      const held = ids ? ids.filter((id) => lastSeen.has(id)) : [...lastSeen.keys()];
      if (held.length) await store.touchLastSeen(held, nowIso());
    },
    /** At start nothing is connected to this process yet (clustered: to no dead instance either). */
    async resetPresence(liveInstances?: Set<string>): Promise<number> {
      return store.markAllOffline(liveInstances);
    },
  };
};

export type DevicesService = ReturnType<typeof devicesServiceFactory>;
