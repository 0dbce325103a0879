import type { Migration } from 'kysely';

/** Migrations of the vault, tasks and chat features (names `0002_*`). */
export const aiMigrations: Record<string, Migration> = {};
