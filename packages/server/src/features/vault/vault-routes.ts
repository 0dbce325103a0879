import { z } from 'zod';
import { type HiveApp, ok } from '../../http/app.js';
import type { VaultService } from './vault-service.js';

const Name = z
  .string()
  .trim()
  .regex(/^[a-z][a-z0-9_.-]{0,31}$/, 'lowercase letters, digits, _ . -; at most 32 characters');
const Password = z.string().min(1).max(1024);
const NewPassword = z.string().min(8, 'at least 8 characters').max(1024);
/** Key values: printable, no whitespace (so masking output line by line is exact), ≥ 8 chars. */
const KeyValue = z
  .string()
  .trim()
  .min(8, 'at least 8 characters')
  .max(8192)
  .regex(/^[^\s\p{Cc}]+$/u, 'no whitespace or control characters');

/** vault_init|unlock|lock|add_key|list_keys|remove_key|status (seed 000 §2.5) over REST. */
export function registerVaultRoutes(app: HiveApp, vault: VaultService): void {
  const who = (req: { principal: Parameters<VaultService['lock']>[0]; ip: string }) => ({ ...req.principal, ip: req.ip });

  app.get('/api/v1/vault/status', {
    config: { scope: 'operator.read' },
    handler: async () => ok(await vault.status()),
  });
  app.post('/api/v1/vault/init', {
    config: { scope: 'operator.admin' },
    schema: { body: z.object({ password: NewPassword }).strict() },
    handler: async (req) => ok(await vault.init(who(req), req.body.password)),
  });
  app.post('/api/v1/vault/unlock', {
    config: { scope: 'operator.admin' },
    schema: { body: z.object({ password: Password }).strict() },
    handler: async (req) => ok(await vault.unlock(who(req), req.body.password)),
  });
  app.post('/api/v1/vault/lock', {
    config: { scope: 'operator.admin' },
    handler: async (req) => ok(await vault.lock(who(req))),
  });
  app.post('/api/v1/vault/passwd', {
    config: { scope: 'operator.admin' },
    schema: { body: z.object({ password: Password, new_password: NewPassword }).strict() },
    handler: async (req) => ok(await vault.passwd(who(req), req.body.password, req.body.new_password)),
  });
  app.get('/api/v1/vault/keys', {
    config: { scope: 'operator.read' },
    handler: async (req) => ok(await vault.listKeys(req.principal)),
  });
  app.post('/api/v1/vault/keys', {
    config: { scope: 'operator.admin' },
    schema: { body: z.object({ provider: Name, key_id: Name.default('main'), value: KeyValue, replace: z.boolean().default(false) }).strict() },
    handler: async (req) => ok(await vault.addKey(who(req), req.body)),
  });
  app.delete('/api/v1/vault/keys/:provider/:key_id', {
    config: { scope: 'operator.admin' },
    schema: { params: z.object({ provider: Name, key_id: Name }) },
    handler: async (req) => ok(await vault.removeKey(who(req), req.params.provider, req.params.key_id)),
  });
}
