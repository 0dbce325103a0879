import { HiveError, OPERATOR_SCOPES, type Scope } from '@hive/protocol';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { createLocalCounter, type HitCounter } from '../../bus/bus.js';
import { mintToken, newId, parseToken, randomSecret, safeEqualHex, sha256 } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { requireScope } from '../../lib/principal.js';
import type { Db } from '../../store/db.js';
import { fromJson, nowIso, toJson } from '../../store/db.js';
import type { ClientsTable, UsersTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import { generatePassword, hashPassword, verifyPassword } from './passwords.js';

export type UserRole = UsersTable['role'];

/** Client roles (seed 000 §4.1) → scopes. No client but `admin` gets operator.admin (no vault but status, no admin tools). */
export const CLIENT_ROLE_SCOPES: Record<ClientsTable['role'], Scope[]> = {
  admin: [...OPERATOR_SCOPES],
  cli_agent: ['operator.read', 'operator.write'],
  desktop: ['operator.read', 'operator.write', 'operator.approvals'],
  mobile: ['operator.read', 'operator.approvals'],
};

/** Global roles (seed 003 §8.3) → operator scopes (seed 001). */
export const ROLE_SCOPES: Record<UserRole, Scope[]> = {
  admin: [...OPERATOR_SCOPES],
  operator: ['operator.read', 'operator.write', 'operator.approvals', 'operator.pairing'],
  viewer: ['operator.read'],
};

export interface UserView {
  id: string;
  username: string;
  role: UserRole;
  scopes: Scope[];
  must_change_password: boolean;
  disabled: boolean;
  created_at: string;
  last_login_at: string | null;
}

export interface Session {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  user: UserView;
}

export interface UsersConfig {
  accessTtlMs: number;
  refreshTtlMs: number;
  passwordLogN: number;
  /** Failed logins per username (per IP: four times as many) within the window before RATE_LIMITED. */
  maxFailures: number;
  failureWindowMs: number;
}

const toView = (u: UsersTable): UserView => ({
  id: u.id,
  username: u.username,
  role: u.role,
  scopes: ROLE_SCOPES[u.role],
  must_change_password: u.must_change_password === 1,
  disabled: u.disabled === 1,
  created_at: u.created_at,
  last_login_at: u.last_login_at,
});

/**
 * People: username + password (scrypt), short-lived JWT access tokens (jose, HS256 with a secret
 * kept in the database so every hub instance verifies them) and rotating refresh tokens stored
 * hashed; presenting a refresh token that was already used revokes its whole family.
 */
export const usersServiceFactory = ({
  db,
  audit,
  cfg,
  onRevoke,
  onRoleChange,
  counter,
}: {
  db: Db;
  audit: Pick<AuditService, 'log'>;
  cfg: UsersConfig;
  onRevoke?: (principalId: string) => void;
  /** A user's role changed: it applies from the next request (caches of principals must forget). */
  onRoleChange?: (userId: string) => void;
  /** Failed-login counters (shared across instances when clustered). */
  counter?: HitCounter | undefined;
}) => {
  let secret: Uint8Array | undefined;
  const failures = counter ?? createLocalCounter();

  async function jwtSecret(): Promise<Uint8Array> {
    if (secret) return secret;
    let row = await db.selectFrom('hub_secrets').selectAll().where('name', '=', 'jwt_secret').executeTakeFirst();
    if (!row) {
      await db
        .insertInto('hub_secrets')
        .values({ name: 'jwt_secret', value: randomSecret(48), created_at: nowIso() })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      row = await db.selectFrom('hub_secrets').selectAll().where('name', '=', 'jwt_secret').executeTakeFirstOrThrow();
    }
    secret = new TextEncoder().encode(row.value);
    return secret;
  }

  /** Per user: maxFailures; per source IP (many users behind one address): four times that. */
  async function throttled(keys: string[]): Promise<boolean> {
    for (const k of keys) {
      if ((await failures.count(`login:${k}`, cfg.failureWindowMs)) >= (k.startsWith('ip:') ? cfg.maxFailures * 4 : cfg.maxFailures)) return true;
    }
    return false;
  }
  async function fail(keys: string[]): Promise<void> {
    for (const k of keys) await failures.hit(`login:${k}`, cfg.failureWindowMs);
  }

  async function issue(u: UsersTable, familyId: string): Promise<Session> {
    const now = Math.floor(Date.now() / 1000);
    const access = await new SignJWT({ username: u.username, roles: [u.role], scopes: ROLE_SCOPES[u.role] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(u.id)
      .setIssuedAt(now)
      .setExpirationTime(now + Math.floor(cfg.accessTtlMs / 1000))
      .setIssuer('hive')
      .sign(await jwtSecret());
    const refresh = mintToken('hrt');
    await db
      .insertInto('refresh_tokens')
      .values({
        id: refresh.id,
        user_id: u.id,
        family_id: familyId,
        token_hash: refresh.hash,
        created_at: nowIso(),
        expires_at: new Date(Date.now() + cfg.refreshTtlMs).toISOString(),
        used_at: null,
        revoked_at: null,
      })
      .execute();
    return { access_token: access, token_type: 'Bearer', expires_in: Math.floor(cfg.accessTtlMs / 1000), refresh_token: refresh.token, user: toView(u) };
  }

  async function byName(username: string): Promise<UsersTable | undefined> {
    return db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
  }

  const actor = (u: { id: string; username: string }, ip?: string) => ({ type: 'user', id: u.id, name: u.username, ip });

  /** A user by id or username; NOT_FOUND otherwise. */
  async function findUser(ref: string): Promise<UsersTable> {
    const u = await db
      .selectFrom('users')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', ref), eb('username', '=', ref)]))
      .executeTakeFirst();
    if (!u) throw new HiveError('NOT_FOUND', `User ${ref} not found`);
    return u;
  }

  return {
    /** First start: an `admin` user with a one-time password (must be changed at first login). */
    async ensureAdmin(): Promise<{ generatedPassword?: string }> {
      const any = await db.selectFrom('users').select('id').limit(1).executeTakeFirst();
      if (any) return {};
      const password = generatePassword();
      const now = nowIso();
      await db
        .insertInto('users')
        .values({
          id: newId('usr'),
          username: 'admin',
          password_hash: await hashPassword(password, cfg.passwordLogN),
          role: 'admin',
          must_change_password: 1,
          disabled: 0,
          created_at: now,
          updated_at: now,
          last_login_at: null,
        })
        .execute();
      audit.log({
        actor: { type: 'system', id: 'hub', name: 'hub' },
        action: 'user.created',
        target: { type: 'user', id: 'admin' },
        details: { username: 'admin', role: 'admin', source: 'first start' },
        result: 'success',
      });
      return { generatedPassword: password };
    },

    async login(username: string, password: string, ip?: string): Promise<Session> {
      const keys = [`u:${username.toLowerCase()}`, `ip:${ip ?? ''}`];
      if (await throttled(keys)) {
        audit.log({ actor: { type: 'user', id: username, name: username, ip }, action: 'auth.login', result: 'failure', error: 'rate limited' });
        throw new HiveError('RATE_LIMITED', 'Too many failed logins; try again later', undefined, { action: 'retry', retryAfterMs: cfg.failureWindowMs });
      }
      const u = await byName(username);
      // Hash even for unknown users so timing does not tell which names exist.
      let ok = false;
      if (u) ok = await verifyPassword(password, u.password_hash);
      else await hashPassword(password, cfg.passwordLogN);
      if (!u || !ok || u.disabled) {
        await fail(keys);
        audit.log({
          actor: { type: 'user', id: u?.id ?? username, name: username, ip },
          action: 'auth.login',
          result: 'failure',
          error: u?.disabled ? 'disabled' : 'invalid credentials',
        });
        throw new HiveError('AUTH_INVALID', 'Invalid username or password');
      }
      await db.updateTable('users').set({ last_login_at: nowIso() }).where('id', '=', u.id).execute();
      audit.log({ actor: actor(u, ip), action: 'auth.login', target: { type: 'user', id: u.id }, result: 'success' });
      return issue(u, newId('fam'));
    },

    /** Rotates: the old refresh token is used up; reusing it revokes the whole family. */
    async refresh(token: string, ip?: string): Promise<Session> {
      const parsed = parseToken('hrt', token);
      const row = parsed ? await db.selectFrom('refresh_tokens').selectAll().where('id', '=', parsed.id).executeTakeFirst() : undefined;
      if (!row || !safeEqualHex(row.token_hash, sha256(token))) throw new HiveError('AUTH_INVALID', 'Unknown refresh token');
      if (row.revoked_at) throw new HiveError('AUTH_INVALID', 'Refresh token revoked');
      if (row.expires_at < nowIso()) throw new HiveError('AUTH_INVALID', 'Refresh token expired');
      const claimed = await db
        .updateTable('refresh_tokens')
        .set({ used_at: nowIso() })
        .where('id', '=', row.id)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) {
        await db.updateTable('refresh_tokens').set({ revoked_at: nowIso() }).where('family_id', '=', row.family_id).where('revoked_at', 'is', null).execute();
        audit.log({
          actor: { type: 'user', id: row.user_id, name: row.user_id, ip },
          action: 'auth.refresh_reuse',
          target: { type: 'user', id: row.user_id },
          details: { family_id: row.family_id },
          result: 'failure',
          error: 'refresh token reused: family revoked',
        });
        throw new HiveError('AUTH_INVALID', 'Refresh token already used; all sessions of this login were revoked');
      }
      const u = await db.selectFrom('users').selectAll().where('id', '=', row.user_id).executeTakeFirst();
      if (!u || u.disabled) throw new HiveError('AUTH_INVALID', 'User no longer active');
      return issue(u, row.family_id);
    },

    async logout(token: string, ip?: string): Promise<{ logged_out: true }> {
      const parsed = parseToken('hrt', token);
      const row = parsed ? await db.selectFrom('refresh_tokens').selectAll().where('id', '=', parsed.id).executeTakeFirst() : undefined;
      if (row && safeEqualHex(row.token_hash, sha256(token))) {
        await db.updateTable('refresh_tokens').set({ revoked_at: nowIso() }).where('family_id', '=', row.family_id).where('revoked_at', 'is', null).execute();
        audit.log({
          actor: { type: 'user', id: row.user_id, name: row.user_id, ip },
          action: 'auth.logout',
          target: { type: 'user', id: row.user_id },
          result: 'success',
        });
      }
      return { logged_out: true };
    },

    /** Verifies an access token; the Principal carries the user's role scopes. */
    async verifyAccess(token: string, ip?: string): Promise<Principal> {
      try {
        const { payload } = await jwtVerify(token, await jwtSecret(), { issuer: 'hive', algorithms: ['HS256'] });
        if (payload.typ === 'client') {
          const c = payload.sub ? await db.selectFrom('clients').selectAll().where('id', '=', payload.sub).executeTakeFirst() : undefined;
          if (!c || c.revoked_at) throw new HiveError('AUTH_INVALID', 'Client revoked');
          const tools = fromJson<string[]>(c.allowed_tools, []);
          return { type: 'client', id: c.id, name: c.id, scopes: new Set(CLIENT_ROLE_SCOPES[c.role]), ip, ...(tools.length ? { allowedTools: tools } : {}) };
        }
        const u = payload.sub ? await db.selectFrom('users').selectAll().where('id', '=', payload.sub).executeTakeFirst() : undefined;
        if (!u || u.disabled) throw new HiveError('AUTH_INVALID', 'User no longer active');
        // Scopes come from the current role, so a demotion takes effect at once.
        return { type: 'user', id: u.id, name: u.username, scopes: new Set(ROLE_SCOPES[u.role]), ip };
      } catch (err) {
        if (err instanceof HiveError) throw err;
        throw new HiveError('AUTH_INVALID', err instanceof joseErrors.JWTExpired ? 'Access token expired; refresh it' : 'Invalid access token');
      }
    },

    async me(p: Principal): Promise<UserView | { type: string; id: string; name: string; scopes: Scope[] }> {
      if (p.type === 'user') {
        const u = await db.selectFrom('users').selectAll().where('id', '=', p.id).executeTakeFirst();
        if (u) return toView(u);
      }
      return { type: p.type, id: p.id, name: p.name, scopes: [...p.scopes] };
    },

    async changePassword(p: Principal, current: string, next: string): Promise<UserView> {
      if (p.type !== 'user') throw new HiveError('FORBIDDEN', 'Only users have passwords');
      const u = await db.selectFrom('users').selectAll().where('id', '=', p.id).executeTakeFirstOrThrow();
      if (!(await verifyPassword(current, u.password_hash))) {
        audit.log({ actor: p, action: 'user.password_changed', target: { type: 'user', id: u.id }, result: 'failure', error: 'wrong current password' });
        throw new HiveError('AUTH_INVALID', 'Current password is wrong');
      }
      await db
        .updateTable('users')
        .set({ password_hash: await hashPassword(next, cfg.passwordLogN), must_change_password: 0, updated_at: nowIso() })
        .where('id', '=', u.id)
        .execute();
      audit.log({ actor: p, action: 'user.password_changed', target: { type: 'user', id: u.id }, result: 'success' });
      return toView({ ...u, must_change_password: 0 });
    },

    /** Client credentials → a 1 h JWT carrying the client's role and allowed tools (seed 000 §4.2). */
    async clientToken(clientId: string, secretValue: string, ip?: string) {
      const keys = [`c:${clientId}`, `ip:${ip ?? ''}`];
      if (await throttled(keys))
        throw new HiveError('RATE_LIMITED', 'Too many failed client logins; try again later', undefined, {
          action: 'retry',
          retryAfterMs: cfg.failureWindowMs,
        });
      const c = await db.selectFrom('clients').selectAll().where('id', '=', clientId).executeTakeFirst();
      if (!c || c.revoked_at || !safeEqualHex(c.secret_hash, sha256(secretValue))) {
        await fail(keys);
        audit.log({
          actor: { type: 'client', id: clientId, name: clientId, ip },
          action: 'auth.client',
          result: 'failure',
          error: 'invalid client credentials',
        });
        throw new HiveError('AUTH_INVALID', 'Invalid client_id or client_secret');
      }
      const now = Math.floor(Date.now() / 1000);
      const allowed = fromJson<string[]>(c.allowed_tools, []);
      const token = await new SignJWT({ typ: 'client', role: c.role, allowed_tools: allowed, scopes: CLIENT_ROLE_SCOPES[c.role] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(c.id)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .setIssuer('hive')
        .sign(await jwtSecret());
      await db.updateTable('clients').set({ last_used_at: nowIso() }).where('id', '=', c.id).execute();
      audit.log({ actor: { type: 'client', id: c.id, name: c.id, ip }, action: 'auth.client', details: { role: c.role }, result: 'success' });
      return { access_token: token, token_type: 'Bearer' as const, expires_in: 3600, role: c.role, allowed_tools: allowed };
    },

    async createClient(p: Principal, input: { client_id: string; role: ClientsTable['role']; allowed_tools?: string[] | undefined }) {
      requireScope(p, 'operator.admin');
      if (await db.selectFrom('clients').select('id').where('id', '=', input.client_id).executeTakeFirst())
        throw new HiveError('CONFLICT', `Client ${input.client_id} already exists`);
      const secretValue = `hcs_${randomSecret(32)}`;
      await db
        .insertInto('clients')
        .values({
          id: input.client_id,
          secret_hash: sha256(secretValue),
          role: input.role,
          allowed_tools: toJson(input.allowed_tools ?? []),
          created_at: nowIso(),
          revoked_at: null,
          last_used_at: null,
        })
        .execute();
      audit.log({
        actor: p,
        action: 'client.created',
        target: { type: 'client', id: input.client_id },
        details: { role: input.role, allowed_tools: input.allowed_tools ?? [] },
        result: 'success',
      });
      return { client_id: input.client_id, client_secret: secretValue, role: input.role, allowed_tools: input.allowed_tools ?? [] };
    },

    async listClients(p: Principal) {
      requireScope(p, 'operator.admin');
      const rows = await db.selectFrom('clients').selectAll().orderBy('id').execute();
      return rows.map((c) => ({
        client_id: c.id,
        role: c.role,
        allowed_tools: fromJson<string[]>(c.allowed_tools, []),
        created_at: c.created_at,
        revoked_at: c.revoked_at,
        last_used_at: c.last_used_at,
      }));
    },

    async revokeClient(p: Principal, clientId: string) {
      requireScope(p, 'operator.admin');
      const r = await db.updateTable('clients').set({ revoked_at: nowIso() }).where('id', '=', clientId).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new HiveError('NOT_FOUND', `No active client ${clientId}`);
      audit.log({ actor: p, action: 'client.revoked', target: { type: 'client', id: clientId }, result: 'success' });
      onRevoke?.(clientId);
      return { client_id: clientId, revoked: true };
    },

    async create(p: Principal, input: { username: string; password: string; role: UserRole }): Promise<UserView> {
      requireScope(p, 'operator.admin');
      if (await byName(input.username)) throw new HiveError('CONFLICT', `User ${input.username} already exists`);
      const now = nowIso();
      const row: UsersTable = {
        id: newId('usr'),
        username: input.username,
        password_hash: await hashPassword(input.password, cfg.passwordLogN),
        role: input.role,
        must_change_password: 0,
        disabled: 0,
        created_at: now,
        updated_at: now,
        last_login_at: null,
      };
      await db.insertInto('users').values(row).execute();
      audit.log({
        actor: p,
        action: 'user.created',
        target: { type: 'user', id: row.id },
        details: { username: row.username, role: row.role },
        result: 'success',
      });
      return toView(row);
    },

    async list(p: Principal): Promise<UserView[]> {
      requireScope(p, 'operator.admin');
      return (await db.selectFrom('users').selectAll().orderBy('username').execute()).map(toView);
    },

    async update(
      p: Principal,
      ref: string,
      patch: { role?: UserRole | undefined; password?: string | undefined; disabled?: boolean | undefined },
    ): Promise<UserView> {
      requireScope(p, 'operator.admin');
      const u = await findUser(ref);
      const set: Partial<UsersTable> = { updated_at: nowIso() };
      if (patch.role) set.role = patch.role;
      if (patch.disabled !== undefined) set.disabled = patch.disabled ? 1 : 0;
      if (patch.password) {
        set.password_hash = await hashPassword(patch.password, cfg.passwordLogN);
        set.must_change_password = 1;
      }
      await db.updateTable('users').set(set).where('id', '=', u.id).execute();
      if (patch.role) onRoleChange?.(u.id);
      if (patch.password || patch.disabled) {
        await db.updateTable('refresh_tokens').set({ revoked_at: nowIso() }).where('user_id', '=', u.id).where('revoked_at', 'is', null).execute();
        onRevoke?.(u.id);
      }
      audit.log({
        actor: p,
        action: 'user.updated',
        target: { type: 'user', id: u.id },
        details: { username: u.username, role: patch.role, disabled: patch.disabled, password_reset: !!patch.password },
        result: 'success',
      });
      return toView({ ...u, ...set });
    },

    async remove(p: Principal, ref: string): Promise<{ id: string; deleted: true }> {
      requireScope(p, 'operator.admin');
      const u = await findUser(ref);
      if (p.type === 'user' && p.id === u.id) throw new HiveError('CONFLICT', 'You cannot remove yourself');
      await db.deleteFrom('refresh_tokens').where('user_id', '=', u.id).execute();
      await db.deleteFrom('users').where('id', '=', u.id).execute();
      onRevoke?.(u.id);
      audit.log({ actor: p, action: 'user.deleted', target: { type: 'user', id: u.id }, details: { username: u.username }, result: 'success' });
      return { id: u.id, deleted: true };
    },
  };
};

export type UsersService = ReturnType<typeof usersServiceFactory>;
