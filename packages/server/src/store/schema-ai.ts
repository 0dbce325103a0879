/** Tables of the vault, tasks and chat features. */
// biome-ignore lint/complexity/noBannedTypes: filled in by those features
export type AiTables = {};
