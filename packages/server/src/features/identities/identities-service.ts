import { HiveError, type Scope } from '@hive/protocol';
import { mintToken, newId, parseToken, safeEqualHex, sha256 } from '../../lib/ids.js';
import type { Principal } from '../../lib/principal.js';
import { requireScope } from '../../lib/principal.js';
import type { Db } from '../../store/db.js';
import { fromJson, nowIso, toJson } from '../../store/db.js';
import type { AiIdentitiesTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';

/** What an AI identity may do at most; its project roles decide where (and reviewer vs member). */
const AI_SCOPES: Scope[] = ['operator.read', 'operator.write', 'operator.approvals'];

const toView = (r: AiIdentitiesTable) => ({
  id: r.id,
  name: r.name,
  nickname: r.nickname,
  expertise: fromJson<string[]>(r.expertise, []),
  version: r.version,
  created_at: r.created_at,
});

/**
 * AI identities (seed 002): profiles separate from projects. An identity acts only in projects it
 * was granted a role in (`hive permission grant --principal ai:<id>`), with one hashed, expiring
 * token (`hai_…`) for all of them.
 */
export const identitiesServiceFactory = ({ db, audit, onRevoke }: { db: Db; audit: Pick<AuditService, 'log'>; onRevoke?: (id: string) => void }) => {
  async function find(ref: string): Promise<AiIdentitiesTable> {
    const row = await db
      .selectFrom('ai_identities')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)]))
      .executeTakeFirst();
    if (!row) throw new HiveError('NOT_FOUND', `AI identity ${ref} not found`);
    return row;
  }
  return {
    async create(p: Principal, input: { name: string; nickname?: string | undefined; expertise?: string[] | undefined; version?: string | undefined }) {
      requireScope(p, 'operator.admin');
      if (await db.selectFrom('ai_identities').select('id').where('name', '=', input.name).executeTakeFirst())
        throw new HiveError('CONFLICT', `AI identity ${input.name} already exists`);
      const row: AiIdentitiesTable = {
        id: newId('ai'),
        name: input.name,
        nickname: input.nickname ?? '',
        expertise: toJson(input.expertise ?? []),
        version: input.version ?? '',
        created_at: nowIso(),
      };
      await db.insertInto('ai_identities').values(row).execute();
      audit.log({ actor: p, action: 'ai_identity.created', target: { type: 'ai', id: row.id }, details: { name: row.name }, result: 'success' });
      return toView(row);
    },
    async list(p: Principal) {
      requireScope(p, 'operator.admin');
      return (await db.selectFrom('ai_identities').selectAll().orderBy('name').execute()).map(toView);
    },
    /** Issues the identity's token (replacing any earlier one); shown once. */
    async issueToken(p: Principal, ref: string, expiresInMs?: number) {
      requireScope(p, 'operator.admin');
      const identity = await find(ref);
      const { id, token, hash } = mintToken('hai');
      const expires_at = expiresInMs ? new Date(Date.now() + expiresInMs).toISOString() : null;
      await db.updateTable('ai_tokens').set({ revoked_at: nowIso() }).where('identity_id', '=', identity.id).where('revoked_at', 'is', null).execute();
      await db
        .insertInto('ai_tokens')
        .values({ id, identity_id: identity.id, token_hash: hash, created_at: nowIso(), expires_at, revoked_at: null, last_used_at: null })
        .execute();
      onRevoke?.(identity.id);
      audit.log({
        actor: p,
        action: 'ai_identity.token_issued',
        target: { type: 'ai', id: identity.id },
        details: { token_id: id, expires_at },
        result: 'success',
      });
      return { identity_id: identity.id, token, token_id: id, expires_at };
    },
    async revokeToken(p: Principal, ref: string) {
      requireScope(p, 'operator.admin');
      const identity = await find(ref);
      const r = await db
        .updateTable('ai_tokens')
        .set({ revoked_at: nowIso() })
        .where('identity_id', '=', identity.id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw new HiveError('NOT_FOUND', `AI identity ${ref} has no live token`);
      onRevoke?.(identity.id);
      audit.log({ actor: p, action: 'ai_identity.token_revoked', target: { type: 'ai', id: identity.id }, result: 'success' });
      return { identity_id: identity.id, revoked: true };
    },
    async verify(token: string, ip?: string): Promise<Principal> {
      const parsed = parseToken('hai', token);
      const row = parsed ? await db.selectFrom('ai_tokens').selectAll().where('id', '=', parsed.id).executeTakeFirst() : undefined;
      if (!row || !safeEqualHex(row.token_hash, sha256(token))) throw new HiveError('AUTH_INVALID', 'Unknown AI token');
      if (row.revoked_at) throw new HiveError('AUTH_INVALID', 'AI token revoked');
      if (row.expires_at && row.expires_at < nowIso()) throw new HiveError('AUTH_INVALID', 'AI token expired');
      const identity = await db.selectFrom('ai_identities').selectAll().where('id', '=', row.identity_id).executeTakeFirst();
      if (!identity) throw new HiveError('AUTH_INVALID', 'AI identity removed');
      return { type: 'ai', id: identity.id, name: identity.name, scopes: new Set(AI_SCOPES), ip };
    },
  };
};

export type IdentitiesService = ReturnType<typeof identitiesServiceFactory>;
