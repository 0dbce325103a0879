import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { HiveError, type Limits, type Scope } from '@hive/protocol';
import type { Logger } from 'pino';
import { type Bus, createLocalBus } from './bus/bus.js';
import { createRedisBus } from './bus/redis-bus.js';
import type { HubConfig } from './config.js';
import { registerApprovalsRoutes } from './features/approvals/approvals-routes.js';
import { approvalsServiceFactory } from './features/approvals/approvals-service.js';
import { registerAuditRoutes } from './features/audit/audit-routes.js';
import { auditServiceFactory } from './features/audit/audit-service.js';
import { registerAuthRoutes } from './features/auth/auth-routes.js';
import { authServiceFactory } from './features/auth/auth-service.js';
import { registerCommandsRoutes } from './features/commands/commands-routes.js';
import { commandsServiceFactory } from './features/commands/commands-service.js';
import { commandsStoreFactory } from './features/commands/commands-store.js';
import { loadHubSigner } from './features/commands/hub-key.js';
import { registerDevicesRoutes } from './features/devices/devices-routes.js';
import { devicesServiceFactory } from './features/devices/devices-service.js';
import { devicesStoreFactory, READ_CACHE_MS } from './features/devices/devices-store.js';
import { registerGroupsRoutes } from './features/groups/groups-routes.js';
import { groupsServiceFactory } from './features/groups/groups-service.js';
import { registerHealthRoutes } from './features/health/health-routes.js';
import { registerIdentitiesRoutes } from './features/identities/identities-routes.js';
import { identitiesServiceFactory } from './features/identities/identities-service.js';
import { createMetrics, type Metrics } from './features/metrics/metrics.js';
import { registerProjectsRoutes } from './features/projects/projects-routes.js';
import { projectsServiceFactory } from './features/projects/projects-service.js';
import { registerSchedulesRoutes } from './features/schedules/schedules-routes.js';
import { schedulesServiceFactory } from './features/schedules/schedules-service.js';
import { registerSessionsRoutes } from './features/sessions/sessions-routes.js';
import { sessionsServiceFactory } from './features/sessions/sessions-service.js';
import { transfersFactory } from './features/sessions/transfers.js';
import { registerUsersRoutes } from './features/users/users-routes.js';
import { usersServiceFactory } from './features/users/users-service.js';
import { createApp } from './http/app.js';
import { randomSecret, sha256 } from './lib/ids.js';
import { createHubLogger } from './lib/logger.js';
import { type Principal, SYSTEM } from './lib/principal.js';
import { openStore } from './store/db.js';
import { attachTlsOnFirstBytes } from './tls/first-bytes.js';
import { type HubCert, loadOrCreateHubCert, tlsEnabled } from './tls/hub-cert.js';
import { wireAi } from './wiring/ai.js';
import { wireMcp } from './wiring/mcp.js';
import { createWsServer } from './ws/ws-server.js';

export const HUB_VERSION = '0.1.0';

/** How long a resolved credential is reused (revocations clear it at once). */
const PRINCIPAL_CACHE_MS = 2000;
/** Cached satellite reads on a single hub (changes end them at once; see devicesStoreFactory). */
const SINGLE_HUB_READ_CACHE_MS = 30_000;
const SINGLE_HUB_SATELLITE_CACHE_MS = 600_000;

export interface BuildOptions {
  logger?: Logger;
  bus?: Bus;
  /** Clock for schedules (tests). */
  now?: () => Date;
  /** Do not tick schedules by timer; tests call `services.schedules.tick(at)`. */
  manualSchedules?: boolean;
}

export interface HubServices {
  devices: ReturnType<typeof devicesServiceFactory>;
  commands: ReturnType<typeof commandsServiceFactory>;
  audit: ReturnType<typeof auditServiceFactory>;
  auth: ReturnType<typeof authServiceFactory>;
  approvals: ReturnType<typeof approvalsServiceFactory>;
  groups: ReturnType<typeof groupsServiceFactory>;
  schedules: ReturnType<typeof schedulesServiceFactory>;
  users: ReturnType<typeof usersServiceFactory>;
  projects: ReturnType<typeof projectsServiceFactory>;
  sessions: ReturnType<typeof sessionsServiceFactory>;
  /** The credential check every edge uses (API key or JWT, project roles attached). */
  credentials: { verifyApiKey(key: string, ip?: string): Promise<Principal> };
  vault: Awaited<ReturnType<typeof wireAi>>['services']['vault'];
  tasks: Awaited<ReturnType<typeof wireAi>>['services']['tasks'];
  chat: Awaited<ReturnType<typeof wireAi>>['services']['chat'];
}

export interface Hub {
  config: HubConfig;
  /** Plaintext admin key when it was generated on this start (show it once). */
  generatedAdminKey: string | undefined;
  /** One-time password of the `admin` user created on first start (must be changed at first login). */
  generatedAdminPassword: string | undefined;
  /** Read-only key valid for this process; the console link carries it. */
  consoleKey: string;
  /** The certificate served when TLS is on (SPEC C8): fingerprint clients pin, files, whether it was created now. */
  tls: Omit<HubCert, 'key' | 'cert'> | undefined;
  listen(): Promise<{ url: string; port: number }>;
  close(): Promise<void>;
  services: HubServices;
  app: ReturnType<typeof createApp>;
}

function limitsFrom(cfg: HubConfig): Limits {
  return {
    maxFrameBytes: cfg.limits.max_frame_bytes,
    handshakeTimeoutMs: cfg.limits.handshake_timeout,
    maxInflight: cfg.limits.max_inflight,
    messagesPerSecond: cfg.limits.messages_per_second,
    messageBurst: cfg.limits.message_burst,
    maxViolations: cfg.limits.max_violations,
    heartbeatMs: cfg.agents.heartbeat_interval,
    pairingWaitMs: cfg.pairing.request_ttl,
  };
}

/** Composition root: config → store → services → http/ws. Does not listen; see `listen()`. */
export async function buildHub(config: HubConfig, opts: BuildOptions = {}): Promise<Hub> {
  const logger = opts.logger ?? createHubLogger(config.logging, config.server.data_dir);
  const cert = tlsEnabled(config) ? await loadOrCreateHubCert(config) : undefined;
  const store = await openStore({
    driver: config.database.driver,
    connection: config.database.connection as string,
    maxConnections: config.database.max_connections,
    ...(config.database.schema ? { schema: config.database.schema } : {}),
    busy: {
      onBusy: (attempt) =>
        logger.warn({ attempt }, 'database file is locked by another connection: a batch of job rows or audit entries waits and is tried again'),
    },
  });
  const db = store.db;
  const hubId = config.cluster.instance_id ?? `hub_${hostname().slice(0, 32)}_${randomSecret(4)}`;
  let bus: Bus;
  try {
    bus =
      opts.bus ??
      (config.cluster.redis_url
        ? await createRedisBus({
            url: config.cluster.redis_url,
            instanceId: hubId,
            logger,
            presenceTtlMs: config.cluster.presence_ttl,
            prefix: config.cluster.key_prefix,
          })
        : createLocalBus(hubId));
  } catch (err) {
    await store.close();
    throw err;
  }

  // Audit entries go to a write-ahead log first: a killed process loses none (replayed here).
  const audit = auditServiceFactory({ db, write: store.write, logger, walDir: path.join(config.server.data_dir, 'audit-wal') });
  await audit.recover();
  // Revoked credentials are cut off at once: every edge holding a connection with them closes it.
  const onRevoke = (principalId: string) => bus.publish('credentials:revoked', { principal_id: principalId });
  const auth = authServiceFactory({ db, audit, onRevoke });
  const users = usersServiceFactory({
    db,
    audit,
    onRevoke,
    onRoleChange: () => bus.publish('permissions:changed', {}),
    counter: bus.counter,
    cfg: {
      accessTtlMs: config.auth.jwt_expiration,
      refreshTtlMs: config.auth.refresh_expiration,
      passwordLogN: config.auth.password_kdf_log_n,
      maxFailures: config.auth.login_max_failures,
      failureWindowMs: config.auth.login_failure_window,
    },
  });
  const projects = projectsServiceFactory({ db, audit, onChange: () => bus.publish('permissions:changed', {}) });
  const identities = identitiesServiceFactory({ db, audit, onRevoke });
  // One credential check for every edge: Hive API keys, or a user's / client's JWT; then the
  // principal's project roles are attached.
  // Resolved principals are kept for 2 s (a REST client at 2,000 req/s would otherwise cost three
  // queries per request); any revocation or permission change, on any instance, clears them.
  const principals = new Map<string, { p: Principal; until: number }>();
  bus.subscribe(({ event }) => {
    if (event === 'credentials:revoked' || event === 'permissions:changed') principals.clear();
  });
  const credentials = {
    verifyApiKey: async (key: string, ip?: string): Promise<Principal> => {
      const k = sha256(key);
      const hit = principals.get(k);
      if (hit && hit.until > Date.now()) return { ...hit.p, ip };
      const p = await projects.attach(
        await (key.startsWith('hive_') ? auth.verifyApiKey(key, ip) : key.startsWith('hai_') ? identities.verify(key, ip) : users.verifyAccess(key, ip)),
      );
      if (principals.size >= 10_000) principals.clear();
      principals.set(k, { p, until: Date.now() + PRINCIPAL_CACHE_MS });
      return p;
    },
  };
  // One hub sees every change of satellites itself (each write ends the cached reads); a cached
  // page's last_seen may then lag by up to this, less than a heartbeat interval, while a satellite's
  // view by id follows every write, heartbeats included (SINGLE_HUB_SATELLITE_CACHE_MS is a safety
  // net). Clustered, other instances' changes come as bus events: cached reads last
  // READ_CACHE_MS (1 s) at most.
  const devicesStore = devicesStoreFactory({
    db,
    driver: store.driver,
    write: store.write,
    readCacheMs: bus.clustered ? READ_CACHE_MS : Math.min(SINGLE_HUB_READ_CACHE_MS, config.agents.heartbeat_interval),
    satelliteCacheMs: bus.clustered ? READ_CACHE_MS : SINGLE_HUB_SATELLITE_CACHE_MS,
  });
  const devices = devicesServiceFactory({
    store: devicesStore,
    audit,
    auth: credentials,
    bus,
    projectExists: (id) => projects.exists(id),
    pairing: {
      autoApproveLoopback: config.pairing.auto_approve_loopback,
      requestTtlMs: config.pairing.request_ttl,
      maxPendingPerIp: config.pairing.max_pending_per_ip,
      maxPendingTotal: config.pairing.max_pending_total,
      tokenTtlMs: config.agents.token_expiration,
    },
  });
  const groups = groupsServiceFactory({ db, audit, resolveRef: devices.resolveRef, byIdsOrTag: devicesStore.byIdsOrTag });
  const approvals = approvalsServiceFactory({
    db,
    bus,
    audit,
    timeoutMs: config.approvals.timeout,
    maxPendingPerRequester: config.approvals.max_pending_per_requester,
  });
  const signer = await loadHubSigner(db);
  // Assigned once the WebSocket server exists; the edges report into it.
  let metrics: Metrics | undefined;
  const commands = commandsServiceFactory({
    store: commandsStoreFactory({ db, write: store.write, hold: !bus.clustered }),
    logger,
    resolveRef: devices.resolveRef,
    resolveTargets: async (t) => {
      const direct = await devices.resolveTargets(t);
      if (!t.group) return direct;
      const merged = new Map(direct.map((s) => [s.id, s]));
      for (const s of await groups.satellites(t.group)) merged.set(s.id, s);
      return [...merged.values()];
    },
    bus,
    audit,
    approvals,
    policy: { ...config.approvals },
    signer,
    fanoutConcurrency: config.commands.fanout_concurrency,
    onFinished: (command, state, ms) => metrics?.commandFinished(command, state, ms),
  });
  const sessions = sessionsServiceFactory({
    db,
    bus,
    audit,
    signer,
    logger,
    hubId,
    resolveSatellite: (p, ref) => devices.getSatellite(p, ref),
    policy: { ...config.approvals },
    approvals,
    cfg: {
      maxPerAgent: config.agents.max_sessions_per_agent,
      idleTimeoutMs: config.sessions.idle_timeout,
      record: config.sessions.record,
      recordInput: config.sessions.record_input,
      recordingsDir: path.join(config.server.data_dir, 'recordings'),
      retentionDays: config.sessions.recording_retention_days,
    },
  });
  const schedules = schedulesServiceFactory({ db, audit, commands, ...(opts.now ? { now: opts.now } : {}) });

  let generatedAdminKey: string | undefined;
  try {
    generatedAdminKey = (await auth.ensureAdminKey(config.auth.admin_api_key)).generated;
  } catch (err) {
    await store.close();
    throw err;
  }
  let generatedAdminPassword: string | undefined;
  try {
    generatedAdminPassword = (await users.ensureAdmin()).generatedPassword;
  } catch (err) {
    await store.close();
    throw err;
  }
  const consoleScopes: Scope[] = ['operator.read'];
  const consoleKey = auth.createEphemeralKey('console', consoleScopes);
  // Clustered, the others' satellites and jobs are theirs: only what dead instances left is reset.
  const live = bus.clustered && bus.liveInstances ? await bus.liveInstances() : undefined;
  const recovered = await commands.recover(live);
  const wasOnline = await devices.resetPresence(live);
  // Sessions a previous run left live end with hub_restart (a PTY does not outlive its relay).
  const sessionsEnded = await sessions.recover(live);
  bus.onInstanceLost?.(async (dead) => {
    const jobs = await commands.releaseInstance(dead);
    const sats = await devices.releaseInstance(dead);
    logger.warn({ instance: dead, jobsFailed: jobs, satellitesOffline: sats }, 'released what a lost hub instance held');
  });
  if (recovered || wasOnline || sessionsEnded)
    logger.info({ jobsFailed: recovered, satellitesReset: wasOnline, sessionsEnded }, 'recovered state from previous run');
  audit.log({
    actor: { type: 'system', id: 'hub', name: 'hub' },
    action: 'hub.started',
    details: { hub_id: hubId, version: HUB_VERSION, driver: store.driver },
    result: 'success',
  });

  const limits = limitsFrom(config);
  const ws = createWsServer({
    devices,
    audit,
    bus,
    logger,
    limits,
    heartbeatMaxMissed: Math.max(1, Math.ceil((config.agents.heartbeat_timeout ?? 3 * config.agents.heartbeat_interval) / config.agents.heartbeat_interval)),
    hubId,
    hubKey: signer.publicKey,
    handlers: {
      'satellites.list': (p, q) => devices.listSatellites(p, q),
      'satellites.get': (p, q) => devices.getSatellite(p, q.satellite),
      exec: (p, q) => commands.exec(p, q),
      'pairing.list': (p, q) => devices.listPairing(p, q?.status),
      'pairing.approve': (p, q) => devices.approvePairing(p, q.id),
      'pairing.reject': (p, q) => devices.rejectPairing(p, q.id),
      'audit.query': async (_p, q) => audit.query(q),
      'approvals.list': (p, q) => approvals.list(p, q?.status),
      'approval.resolve': (p, q) => approvals.resolve(p, q.id, q.decision, q.reason),
      'jobs.get': (p, q) => commands.get(p, q.id),
      'jobs.cancel': (p, q) => commands.cancel(p, q.id),
    },
    sessions: (method, p, q, sink) => sessions.handleWs(method, p, q, sink),
  });

  let shuttingDown = false;
  const app = createApp({
    logger,
    auth: credentials,
    audit,
    requestsPerMinute: config.limits.api_requests_per_minute,
    onResponse: (method, route, status, seconds) => metrics?.apiRequest(method, route, status, seconds),
    https: cert && { key: cert.key, cert: cert.cert },
  });
  // TLS starts on each connection's first bytes: its receive buffer is then ~1 KiB, not 64 KiB.
  if (cert) attachTlsOnFirstBytes(app.server);
  registerHealthRoutes(app, {
    ping: () => store.ping(),
    isShuttingDown: () => shuttingDown,
    version: HUB_VERSION,
    stats: () => ({ ...(ws.stats() as object), instance: hubId, ...(bus.clustered ? { clustered: true } : {}) }),
    clusterProblem: () => bus.problem?.() ?? null,
  });
  metrics = createMetrics(hubId, {
    satellitesTotal: async () => (await devices.listSatellites(SYSTEM, { page: 1, per_page: 1 })).total,
    satellitesOnline: () => bus.connectedCount(),
    websocketConnections: () => ws.stats().connections,
    sessionsActive: () => sessions.activeCount(),
  });
  const promRegistry = metrics.registry;
  app.get('/metrics', { config: { scope: 'operator.read' } }, async (_req, reply) => reply.type(promRegistry.contentType).send(await promRegistry.metrics()));
  registerUsersRoutes(app, users);
  registerProjectsRoutes(app, projects);
  registerIdentitiesRoutes(app, identities);
  registerAuthRoutes(app, auth, { grant: (p, g) => projects.grant(p, g) });
  registerDevicesRoutes(app, devices);
  registerCommandsRoutes(app, commands, { groupSatellites: (ref) => groups.satellites(ref) });
  registerGroupsRoutes(app, groups);
  registerApprovalsRoutes(app, approvals);
  registerSchedulesRoutes(app, schedules);
  registerAuditRoutes(app, audit);
  registerSessionsRoutes(
    app,
    sessions,
    transfersFactory({ bus, audit, signer, resolveSatellite: (p, ref) => devices.getSatellite(p, ref), policy: { ...config.approvals }, approvals }),
  );
  const ai = await wireAi({ app, db, config, audit, auth, bus, logger, commands, resolveSatellite: devices.resolveRef });
  const services: HubServices = { devices, commands, audit, auth, approvals, groups, schedules, users, projects, credentials, sessions, ...ai.services };
  const mcp = await wireMcp({ app, config, logger, services });
  const statusPage = await readFile(new URL('../static/index.html', import.meta.url), 'utf8');
  app.get('/', { config: { scope: 'public' } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(statusPage),
  );

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!ws.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
  });

  const sweeper = setInterval(
    () => {
      void devices.sweepPairing().catch(() => {});
      void approvals.sweep().catch(() => {});
      void commands.sweep().catch(() => {});
    },
    config.approvals.timeout < 10_000 ? 250 : 1000,
  );
  // Audit retention: entries older than audit.retention_days go, hourly (and once at start).
  const retention = setInterval(() => void audit.prune(config.audit.retention_days).catch(() => {}), 3_600_000);
  retention.unref();
  void audit.prune(config.audit.retention_days).catch(() => {});
  // Schedules are checked every 15 s: every minute-granular cron fires within its minute.
  const scheduler = opts.manualSchedules
    ? undefined
    : setInterval(() => void schedules.tick().catch((err) => logger.error({ err: (err as Error).message }, 'schedule tick failed')), 15_000);
  scheduler?.unref();
  sweeper.unref();

  let closing: Promise<void> | undefined;
  return {
    config,
    generatedAdminKey,
    generatedAdminPassword,
    consoleKey,
    app,
    services,
    tls: cert && (({ key: _k, cert: _c, ...info }) => info)(cert),
    async listen() {
      // A deep accept queue: after a restart the whole fleet reconnects within seconds, and
      // handshakes that do synchronous SQLite work must not make the kernel drop new SYNs.
      await app.listen({ host: config.server.host, port: config.server.port, backlog: 4096 });
      const addr = app.server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      if (cert) logger.info({ fingerprint: cert.fingerprint, cert: cert.certFile, generated: cert.generated }, 'serving HTTPS and WSS only');
      const scheme = cert ? 'https' : 'http';
      logger.info({ instance: hubId, address: `${host}:${addr.port}`, tls: !!cert, driver: store.driver, clustered: !!bus.clustered }, 'hub listening');
      return { url: `${scheme}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`, port: addr.port };
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        clearInterval(sweeper);
        if (scheduler) clearInterval(scheduler);
        clearInterval(retention);
        // Stop accepting new HTTP connections; existing requests finish.
        const httpClosed = app.close();
        await sessions.shutdown();
        await ws.shutdown();
        const failed = await commands.shutdown();
        if (failed) logger.warn({ jobs: failed }, 'jobs ended by shutdown');
        // Keep-alive sockets that went idle after close() began would hold it open for minutes.
        app.server.closeIdleConnections();
        const grace = setTimeout(() => app.server.closeAllConnections(), 3000);
        await httpClosed;
        clearTimeout(grace);
        await mcp.close();
        await ai.close();
        audit.log({ actor: { type: 'system', id: 'hub', name: 'hub' }, action: 'hub.stopped', details: { hub_id: hubId }, result: 'success' });
        await audit.close();
        await bus.close?.();
        await store.close();
      })();
      return closing;
    },
  };
}

export { HiveError };
