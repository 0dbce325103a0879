import { HiveError, type Scope } from '@hive/protocol';

/** Who is acting. Every service call that changes something takes one, for permission and audit. */
export interface Principal {
  type: 'api_key' | 'device' | 'system' | 'user' | 'mcp' | 'client' | 'ai';
  /**
   * Per-project roles (seed 002). Undefined = not restricted (a global administrator). Set = sees
   * and acts only in these projects (principals without any role: the default project).
   */
  projects?: ReadonlyMap<string, 'admin' | 'member' | 'reviewer'> | undefined;
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

export type ProjectNeed = 'read' | 'write' | 'approve';

/** Whether `p` may see (read) or act (write / approve) in `project`. */
export function inProject(p: Principal, project: string, need: ProjectNeed = 'read'): boolean {
  if (!p.projects) return true;
  const role = p.projects.get(project);
  if (!role) return false;
  if (need === 'read') return true;
  if (need === 'write') return role === 'admin' || role === 'member';
  return role === 'admin' || role === 'reviewer';
}

/** Throws SATELLITE_NOT_FOUND when invisible (no leak), FORBIDDEN when visible but not allowed. */
export function requireProject(p: Principal, sat: { id: string; project: string }, need: ProjectNeed): void {
  if (!inProject(p, sat.project, 'read')) throw new HiveError('SATELLITE_NOT_FOUND', `Satellite ${sat.id} not found`);
  if (!inProject(p, sat.project, need))
    throw new HiveError('FORBIDDEN', `Your role in project ${sat.project} does not allow this`, { project: sat.project, need });
}

/** Projects a restricted principal may see, or undefined for all. */
export const visibleProjects = (p: Principal): string[] | undefined => (p.projects ? [...p.projects.keys()] : undefined);
