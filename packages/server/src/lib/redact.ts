const SECRET_KEY = /pass(word|wd|phrase)?|secret|token|api[-_]?key|authorization|cookie|signature|private[-_]?key|credential/i;
const SECRET_FLAG = /^--?(pass(word)?|secret|token|api[-_]?key|key|auth)$/i;
const SECRET_ASSIGN = /^(--?[\w-]*(pass(word)?|secret|token|api[-_]?key|auth)[\w-]*=|[A-Z0-9_]*(PASSWORD|SECRET|TOKEN|API_KEY)[A-Z0-9_]*=)/i;
const TOKEN_SHAPE = /\b(hive|hdt)_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{20,}/g;

export const REDACTED = '[REDACTED]';

/** Redacts a command argv: values after `--password`-like flags and `X_TOKEN=...` style assignments. */
export function redactArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  let hideNext = false;
  for (const a of argv) {
    if (hideNext) {
      out.push(REDACTED);
      hideNext = false;
      continue;
    }
    const assign = SECRET_ASSIGN.exec(a);
    if (assign) out.push(`${assign[0]}${REDACTED}`);
    else out.push(a.replace(TOKEN_SHAPE, REDACTED));
    if (SECRET_FLAG.test(a)) hideNext = true;
  }
  return out;
}

/**
 * Deep copy with secrets removed: values under secret-looking keys, argv arrays, and anything
 * shaped like a Hive token. Used before anything is logged, audited or stored as job params.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[…]';
  if (typeof value === 'string') return mayHoldToken(value) ? value.replace(TOKEN_SHAPE, REDACTED) : value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value)) {
      const v = (value as Record<string, unknown>)[k];
      if (isSecretKey(k)) out[k] = REDACTED;
      else if (k === 'argv' && Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = redactArgv(v);
      // Environment maps carry keys under arbitrary names: keep the names, never the values.
      else if (k === 'env' && v && typeof v === 'object' && !Array.isArray(v)) out[k] = Object.fromEntries(Object.keys(v).map((name) => [name, REDACTED]));
      else out[k] = typeof v === 'object' || typeof v === 'string' ? redact(v, depth + 1) : v;
    }
    return out;
  }
  return value;
}

/** Only strings containing a token's prefix can match TOKEN_SHAPE (most strings are skipped without a regex scan). */
const mayHoldToken = (s: string): boolean => s.includes('hive_') || s.includes('hdt_');

// Audit details and job params use a small vocabulary of keys: each is tested once.
const secretKeys = new Map<string, boolean>();
function isSecretKey(k: string): boolean {
  let secret = secretKeys.get(k);
  if (secret === undefined) {
    secret = SECRET_KEY.test(k);
    if (secretKeys.size < 10_000) secretKeys.set(k, secret);
  }
  return secret;
}
