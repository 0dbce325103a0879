import { HiveError, OPERATOR_SCOPES, type Scope } from '@hive/protocol';
import { mintToken, parseToken, safeEqualHex, sha256 } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { requireScope } from '../../lib/principal.js';
import type { Db } from '../../store/db.js';
import { fromJson, nowIso, toJson } from '../../store/db.js';
import type { AuditService } from '../audit/audit-service.js';

const ALL_SCOPES: Scope[] = [...OPERATOR_SCOPES];
const LAST_USED_WRITE_MS = 60_000;

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  last_used_ip: string | null;
}

/**
 * API keys (`X-API-Key` / `Authorization: Bearer`). Keys are `hive_<id>_<secret>`; only their
 * SHA-256 is stored. The admin key comes from `auth.admin_api_key` / `ADMIN_API_KEY`, or is
 * generated on first start and shown once.
 */
export const authServiceFactory = ({ db, audit, onRevoke }: { db: Db; audit: Pick<AuditService, 'log'>; onRevoke?: (principalId: string) => void }) => {
  /** Keys living only in this process (the read-only console link printed at start). */
  const ephemeral = new Map<string, { hash: string; principal: Omit<Principal, 'ip'> }>();
  const lastUsedWritten = new Map<string, number>();

  async function verifyApiKey(key: string, ip?: string): Promise<Principal> {
    const parsed = parseToken('hive', key);
    if (!parsed) throw new HiveError('AUTH_INVALID', 'Malformed API key');
    const eph = ephemeral.get(parsed.id);
    if (eph) {
      if (!safeEqualHex(eph.hash, sha256(key))) throw new HiveError('AUTH_INVALID', 'Invalid API key');
      return { ...eph.principal, ip };
    }
    const row = await db.selectFrom('api_keys').selectAll().where('id', '=', parsed.id).executeTakeFirst();
    if (!row || !safeEqualHex(row.key_hash, sha256(key))) throw new HiveError('AUTH_INVALID', 'Invalid API key');
    if (row.revoked_at) throw new HiveError('AUTH_INVALID', 'API key revoked');
    if (row.expires_at && row.expires_at < nowIso()) throw new HiveError('AUTH_INVALID', 'API key expired');
    const now = Date.now();
    if ((lastUsedWritten.get(row.id) ?? 0) + LAST_USED_WRITE_MS < now) {
      lastUsedWritten.set(row.id, now);
      await db
        .updateTable('api_keys')
        .set({ last_used_at: new Date(now).toISOString(), last_used_ip: ip ?? null })
        .where('id', '=', row.id)
        .execute();
    }
    return { type: 'api_key', id: row.id, name: row.name, scopes: new Set(fromJson<Scope[]>(row.scopes, [])), ip };
  }

  /** Stores an admin key with every scope (`source`: where it came from, for the audit entry). */
  async function insertAdminKey(id: string, keyHash: string, source: 'config' | 'generated'): Promise<void> {
    await db
      .insertInto('api_keys')
      .values({
        id,
        name: 'admin',
        key_hash: keyHash,
        scopes: toJson(ALL_SCOPES),
        created_at: nowIso(),
        expires_at: null,
        revoked_at: null,
        last_used_at: null,
        last_used_ip: null,
      })
      .execute();
    audit.log({
      actor: { type: 'system', id: 'hub', name: 'hub' },
      action: 'apikey.created',
      target: { type: 'api_key', id },
      details: { name: 'admin', source },
      result: 'success',
    });
  }

  return {
    verifyApiKey,

    /**
     * Makes sure an admin key exists. With `configured` set, that key is (re)installed as the
     * admin key. Returns the new plaintext key when one was generated (to be shown once).
     */
    async ensureAdminKey(configured: string | undefined): Promise<{ generated?: string }> {
      if (configured) {
        const parsed = parseToken('hive', configured);
        if (!parsed) {
          throw new HiveError(
            'INVALID_PARAMETERS',
            'auth.admin_api_key / ADMIN_API_KEY must look like hive_<12 alphanumerics>_<43 base64url chars>; generate one with `hive keygen`',
          );
        }
        const existing = await db.selectFrom('api_keys').select('id').where('id', '=', parsed.id).executeTakeFirst();
        if (!existing) await insertAdminKey(parsed.id, sha256(configured), 'config');
        return {};
      }
      const any = await db.selectFrom('api_keys').select('id').where('name', '=', 'admin').where('revoked_at', 'is', null).executeTakeFirst();
      if (any) return {};
      const { id, token, hash } = mintToken('hive');
      await insertAdminKey(id, hash, 'generated');
      return { generated: token };
    },

    /** A key valid only while this process runs; used for the console link printed at start. */
    createEphemeralKey(name: string, scopes: Scope[]): string {
      const { id, token, hash } = mintToken('hive');
      ephemeral.set(id, { hash, principal: { type: 'api_key', id: `ephemeral:${id}`, name, scopes: new Set(scopes) } });
      return token;
    },

    /** A new stored API key with the given scopes; the plaintext is returned only here. */
    async createApiKey(
      name: string,
      scopes: Scope[],
      by: Pick<Principal, 'type' | 'id' | 'name'> = { type: 'system', id: 'hub', name: 'hub' },
      expiresAt: string | null = null,
    ): Promise<{ id: string; key: string }> {
      const unknown = scopes.filter((s) => !ALL_SCOPES.includes(s));
      if (unknown.length) throw new HiveError('INVALID_PARAMETERS', `Unknown scopes: ${unknown.join(', ')}`);
      const { id, token, hash } = mintToken('hive');
      await db
        .insertInto('api_keys')
        .values({
          id,
          name,
          key_hash: hash,
          scopes: toJson([...new Set(scopes)]),
          created_at: nowIso(),
          expires_at: expiresAt,
          revoked_at: null,
          last_used_at: null,
          last_used_ip: null,
        })
        .execute();
      audit.log({
        actor: { type: by.type, id: by.id, name: by.name },
        action: 'apikey.created',
        target: { type: 'api_key', id },
        details: { name, scopes, expires_at: expiresAt },
        result: 'success',
      });
      return { id, key: token };
    },

    /** Revokes a key; live connections using it are closed (the bus tells every edge). */
    async revokeApiKey(p: Principal, id: string): Promise<ApiKeyView> {
      requireScope(p, 'operator.admin');
      const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new HiveError('NOT_FOUND', `API key ${id} not found`);
      if (row.revoked_at) throw new HiveError('ALREADY_RESOLVED', `API key ${id} is already revoked`);
      await db.updateTable('api_keys').set({ revoked_at: nowIso() }).where('id', '=', id).execute();
      audit.log({ actor: p, action: 'apikey.revoked', target: { type: 'api_key', id }, details: { name: row.name }, result: 'success' });
      onRevoke?.(id);
      return (await this.listKeys()).find((k) => k.id === id) as ApiKeyView;
    },

    /** A new secret with the same name, scopes and expiry; the old key stops working at once. */
    async rotateApiKey(p: Principal, id: string): Promise<{ id: string; key: string; replaced: string }> {
      requireScope(p, 'operator.admin');
      const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row || row.revoked_at) throw new HiveError('NOT_FOUND', `API key ${id} not found or revoked`);
      const next = await this.createApiKey(row.name, fromJson<Scope[]>(row.scopes, []), p, row.expires_at);
      await this.revokeApiKey(p, id);
      audit.log({ actor: p, action: 'apikey.rotated', target: { type: 'api_key', id }, details: { replaced_by: next.id }, result: 'success' });
      return { ...next, replaced: id };
    },

    async listKeys(): Promise<ApiKeyView[]> {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('created_at').execute();
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        prefix: `hive_${r.id}_`,
        scopes: fromJson<Scope[]>(r.scopes, []),
        created_at: r.created_at,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
        last_used_at: r.last_used_at,
        last_used_ip: r.last_used_ip,
      }));
    },
  };
};

export type AuthService = ReturnType<typeof authServiceFactory>;
