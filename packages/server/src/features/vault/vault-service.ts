import { randomBytes } from 'node:crypto';
import { HiveError } from '@hive/protocol';
import type { Logger } from 'pino';
import type { VaultConfig } from '../../config-ai.js';
import type { Principal } from '../../lib/principal.js';
import { requireScope } from '../../lib/principal.js';
import type { Db } from '../../store/db.js';
import { fromJson, nowIso, toJson } from '../../store/db.js';
import type { AuditService } from '../audit/audit-service.js';
import { deriveKek, entryAad, fingerprint, type KdfParams, newKdfParams, open, seal, unwrapDataKey, wrapDataKey } from './vault-crypto.js';

export interface VaultStatus {
  initialized: boolean;
  unlocked: boolean;
  key_count: number;
  kdf: Omit<KdfParams, 'salt'> | null;
  unlocked_at: string | null;
}

export interface VaultKeyView {
  provider: string;
  key_id: string;
  fingerprint: string;
  created_at: string;
  last_used_at: string | null;
}

/** Why a key is decrypted; goes into the audit entry (`vault.key_used`). */
export interface KeyUse {
  actor: Principal;
  purpose: 'task' | 'chat';
  task_id?: string | undefined;
  model?: string | undefined;
}

export interface KeyNeed {
  provider: string;
  key_id: string;
  optional?: boolean | undefined;
}

const META_ID = 'main';

type Deps = {
  db: Db;
  audit: Pick<AuditService, 'log'>;
  logger: Logger;
  config: VaultConfig;
};

const actorOf = (p: Principal) => ({ type: p.type, id: p.id, name: p.name, ip: p.ip });

/**
 * The key vault (seed 000 §2). Entries live encrypted in the database; the data key exists in
 * memory only while unlocked and is zero-filled by `lock`. Decrypted values are handed out per
 * use (a task start, a chat call) and every use is audited; nothing decrypted is cached.
 */
export const vaultServiceFactory = ({ db, audit, logger, config }: Deps) => {
  let dek: Buffer | null = null;
  let unlockedAt: string | null = null;
  let failures: number[] = [];
  // scrypt takes ~128 MiB and a good fraction of a second: one derivation at a time.
  let gate: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = gate.then(fn, fn);
    gate = run.catch(() => {});
    return run;
  };

  const getMeta = () => db.selectFrom('vault_meta').selectAll().where('id', '=', META_ID).executeTakeFirst();

  function checkRate(): void {
    const now = Date.now();
    failures = failures.filter((t) => t > now - config.failure_window);
    if (failures.length >= config.max_unlock_failures) {
      const retryAfterMs = Math.max(1000, (failures[0] as number) + config.failure_window - now);
      throw new HiveError(
        'RATE_LIMITED',
        'Too many wrong vault passwords; wait before trying again',
        { retry_after_ms: retryAfterMs },
        { action: 'retry', retryAfterMs },
      );
    }
  }

  /** Derives the KEK and unwraps the data key; a wrong password counts as a failure. */
  async function unwrapWith(password: string, p: Principal, action: string): Promise<{ key: Buffer; kdf: KdfParams }> {
    const meta = await getMeta();
    if (!meta) throw new HiveError('VAULT_NOT_INITIALIZED', 'The vault is not initialized; run `hive vault init`');
    checkRate();
    const kdf = fromJson<KdfParams>(meta.kdf, newKdfParams(config.scrypt_log_n));
    const kek = await deriveKek(password, kdf);
    try {
      return { key: unwrapDataKey(kek, meta.wrapped_key), kdf };
    } catch {
      failures.push(Date.now());
      audit.log({ actor: actorOf(p), action, target: { type: 'vault', id: META_ID }, result: 'failure', error: 'wrong password' });
      throw new HiveError('AUTH_INVALID', 'Wrong vault password', undefined, { action: 'reauth' });
    } finally {
      kek.fill(0);
    }
  }

  function requireUnlocked(): Buffer {
    if (!dek) throw new HiveError('VAULT_LOCKED', 'The vault is locked; run `hive vault unlock`', undefined, { action: 'reauth' });
    return dek;
  }

  async function requireReady(): Promise<Buffer> {
    if (dek) return dek;
    if (!(await getMeta())) throw new HiveError('VAULT_NOT_INITIALIZED', 'The vault is not initialized; run `hive vault init`');
    return requireUnlocked();
  }

  function decryptRow(key: Buffer, row: { provider: string; key_id: string; ciphertext: string }): string {
    let plain: Buffer;
    try {
      plain = open(key, row.ciphertext, entryAad(row.provider, row.key_id));
    } catch {
      // Tampered, or a ciphertext moved from another entry: GCM with the entry's AAD rejects it.
      logger.error({ provider: row.provider, key_id: row.key_id }, 'vault entry failed to decrypt');
      throw new HiveError('INTERNAL_ERROR', `Vault entry ${row.provider}/${row.key_id} failed its integrity check`);
    }
    const s = plain.toString('utf8');
    plain.fill(0);
    return s;
  }

  function wipe(): void {
    dek?.fill(0);
    dek = null;
    unlockedAt = null;
  }

  async function status(): Promise<VaultStatus> {
    const meta = await getMeta();
    const [{ n } = { n: 0 }] = await db
      .selectFrom('vault_entries')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .execute();
    const kdf = meta ? fromJson<KdfParams | null>(meta.kdf, null) : null;
    return {
      initialized: !!meta,
      unlocked: dek !== null,
      key_count: Number(n),
      kdf: kdf ? { alg: kdf.alg, log_n: kdf.log_n, r: kdf.r, p: kdf.p } : null,
      unlocked_at: unlockedAt,
    };
  }

  return {
    isUnlocked: (): boolean => dek !== null,
    status,

    /** Creates the vault and leaves it unlocked. */
    init(p: Principal, password: string): Promise<VaultStatus> {
      requireScope(p, 'operator.admin');
      return serial(async () => {
        if (await getMeta()) throw new HiveError('CONFLICT', 'The vault is already initialized; use `hive vault unlock`');
        const kdf = newKdfParams(config.scrypt_log_n);
        const kek = await deriveKek(password, kdf);
        const key = randomBytes(32);
        try {
          const now = nowIso();
          await db
            .insertInto('vault_meta')
            .values({ id: META_ID, kdf: toJson(kdf), wrapped_key: wrapDataKey(kek, key), created_at: now, updated_at: now })
            .execute();
        } catch (err) {
          key.fill(0);
          throw err;
        } finally {
          kek.fill(0);
        }
        wipe();
        dek = key;
        unlockedAt = nowIso();
        audit.log({
          actor: actorOf(p),
          action: 'vault.init',
          target: { type: 'vault', id: META_ID },
          details: { kdf: 'scrypt', log_n: kdf.log_n },
          result: 'success',
        });
        return status();
      });
    },

    unlock(p: Principal, password: string): Promise<VaultStatus> {
      requireScope(p, 'operator.admin');
      return serial(async () => {
        const { key } = await unwrapWith(password, p, 'vault.unlock');
        failures = [];
        wipe();
        dek = key;
        unlockedAt = nowIso();
        audit.log({ actor: actorOf(p), action: 'vault.unlock', target: { type: 'vault', id: META_ID }, result: 'success' });
        return status();
      });
    },

    async lock(p: Principal): Promise<VaultStatus> {
      requireScope(p, 'operator.admin');
      const was = dek !== null;
      wipe();
      audit.log({ actor: actorOf(p), action: 'vault.lock', target: { type: 'vault', id: META_ID }, details: { was_unlocked: was }, result: 'success' });
      return status();
    },

    /** New password: re-wraps the data key under a new salt; entries are untouched. */
    passwd(p: Principal, oldPassword: string, newPassword: string): Promise<VaultStatus> {
      requireScope(p, 'operator.admin');
      return serial(async () => {
        const { key } = await unwrapWith(oldPassword, p, 'vault.passwd');
        try {
          const kdf = newKdfParams(config.scrypt_log_n);
          const kek = await deriveKek(newPassword, kdf);
          try {
            await db
              .updateTable('vault_meta')
              .set({ kdf: toJson(kdf), wrapped_key: wrapDataKey(kek, key), updated_at: nowIso() })
              .where('id', '=', META_ID)
              .execute();
          } finally {
            kek.fill(0);
          }
        } finally {
          key.fill(0);
        }
        failures = [];
        audit.log({ actor: actorOf(p), action: 'vault.passwd', target: { type: 'vault', id: META_ID }, result: 'success' });
        return status();
      });
    },

    async addKey(p: Principal, input: { provider: string; key_id: string; value: string; replace?: boolean | undefined }): Promise<VaultKeyView> {
      requireScope(p, 'operator.admin');
      const key = await requireReady();
      const existing = await db
        .selectFrom('vault_entries')
        .select('provider')
        .where('provider', '=', input.provider)
        .where('key_id', '=', input.key_id)
        .executeTakeFirst();
      if (existing && !input.replace) {
        throw new HiveError('CONFLICT', `Key ${input.provider}/${input.key_id} exists; remove it first or pass replace`);
      }
      const plain = Buffer.from(input.value, 'utf8');
      const row = {
        provider: input.provider,
        key_id: input.key_id,
        ciphertext: seal(key, plain, entryAad(input.provider, input.key_id)),
        fingerprint: fingerprint(key, plain),
        created_at: nowIso(),
        last_used_at: null,
      };
      plain.fill(0);
      if (existing) {
        await db.updateTable('vault_entries').set(row).where('provider', '=', row.provider).where('key_id', '=', row.key_id).execute();
      } else {
        await db.insertInto('vault_entries').values(row).execute();
      }
      audit.log({
        actor: actorOf(p),
        action: 'vault.key_added',
        target: { type: 'vault_key', id: `${row.provider}/${row.key_id}` },
        details: { provider: row.provider, key_id: row.key_id, fingerprint: row.fingerprint, replaced: !!existing },
        result: 'success',
      });
      return { provider: row.provider, key_id: row.key_id, fingerprint: row.fingerprint, created_at: row.created_at, last_used_at: null };
    },

    async listKeys(p: Principal): Promise<VaultKeyView[]> {
      requireScope(p, 'operator.read');
      await requireReady();
      const rows = await db
        .selectFrom('vault_entries')
        .select(['provider', 'key_id', 'fingerprint', 'created_at', 'last_used_at'])
        .orderBy('provider')
        .orderBy('key_id')
        .execute();
      return rows;
    },

    async removeKey(p: Principal, provider: string, keyId: string): Promise<{ provider: string; key_id: string }> {
      requireScope(p, 'operator.admin');
      await requireReady();
      const r = await db.deleteFrom('vault_entries').where('provider', '=', provider).where('key_id', '=', keyId).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw new HiveError('NOT_FOUND', `No key ${provider}/${keyId} in the vault`);
      audit.log({
        actor: actorOf(p),
        action: 'vault.key_removed',
        target: { type: 'vault_key', id: `${provider}/${keyId}` },
        details: { provider, key_id: keyId },
        result: 'success',
      });
      return { provider, key_id: keyId };
    },

    /**
     * Decrypts the keys a task or chat call needs, auditing each use. A missing required key
     * fails with NO_API_KEY naming the provider. The caller drops the values when done.
     */
    async useKeys(needs: KeyNeed[], use: KeyUse): Promise<Map<string, string>> {
      const out = new Map<string, string>();
      if (needs.length === 0) return out;
      const required = needs.filter((n) => !n.optional);
      if (!dek) {
        if (required.length === 0) return out;
        await requireReady();
      }
      const key = requireUnlocked();
      const now = nowIso();
      for (const need of needs) {
        const row = await db.selectFrom('vault_entries').selectAll().where('provider', '=', need.provider).where('key_id', '=', need.key_id).executeTakeFirst();
        if (!row) {
          if (need.optional) continue;
          throw new HiveError(
            'NO_API_KEY',
            `No API key for provider ${need.provider} (key id ${need.key_id}); add one with \`hive vault add-key ${need.provider}\``,
            {
              provider: need.provider,
              key_id: need.key_id,
            },
          );
        }
        out.set(`${need.provider}/${need.key_id}`, decryptRow(key, row));
      }
      for (const id of out.keys()) {
        const [provider, keyId] = id.split('/') as [string, string];
        await db.updateTable('vault_entries').set({ last_used_at: now }).where('provider', '=', provider).where('key_id', '=', keyId).execute();
        audit.log({
          actor: actorOf(use.actor),
          action: 'vault.key_used',
          target: { type: 'vault_key', id },
          details: {
            provider,
            key_id: keyId,
            purpose: use.purpose,
            ...(use.task_id ? { task_id: use.task_id } : {}),
            ...(use.model ? { model: use.model } : {}),
          },
          result: 'success',
          correlationId: use.task_id,
        });
      }
      return out;
    },

    /** Every stored value, for masking output only (not a use: nothing is handed to anyone). */
    async valuesForMasking(): Promise<string[]> {
      if (!dek) return [];
      const key = dek;
      const rows = await db.selectFrom('vault_entries').select(['provider', 'key_id', 'ciphertext']).execute();
      const out: string[] = [];
      for (const r of rows) {
        try {
          out.push(decryptRow(key, r));
        } catch {
          /* reported by decryptRow's log; a broken entry cannot leak */
        }
      }
      return out;
    },

    close(): void {
      wipe();
    },
  };
};

export type VaultService = ReturnType<typeof vaultServiceFactory>;
