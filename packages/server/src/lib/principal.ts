import { HiveError, type Scope } from '@hive/protocol';

/** Who is acting. Every service call that changes something takes one, for permission and audit. */
export interface Principal {
  type: 'api_key' | 'device' | 'system' | 'user' | 'mcp' | 'client';
  /** Client credentials (seed 000 §4) may narrow the tools a client can use. */
  allowedTools?: readonly string[] | undefined;
  id: string;
  name: string;
  scopes: ReadonlySet<Scope>;
  ip?: string | undefined;
}

export const SYSTEM: Principal = {
  type: 'system',
  id: 'hub',
  name: 'hub',
  scopes: new Set<Scope>(['operator.read', 'operator.write', 'operator.admin', 'operator.approvals', 'operator.pairing']),
};

export function requireScope(p: Principal, scope: Scope): void {
  // operator.admin implies every other operator scope
  if (!p.scopes.has(scope) && !p.scopes.has('operator.admin')) {
    throw new HiveError('FORBIDDEN', `Missing scope ${scope}`, { required: scope });
  }
}
