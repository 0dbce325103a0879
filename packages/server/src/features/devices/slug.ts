import { randomInt } from 'node:crypto';

const ADJECTIVES = [
  'scarlet',
  'salt',
  'amber',
  'coral',
  'misty',
  'brisk',
  'copper',
  'deep',
  'swift',
  'tidal',
  'quiet',
  'bright',
  'azure',
  'sandy',
  'stormy',
  'gentle',
];
const NOUNS = ['claw', 'wave', 'pinch', 'shell', 'reef', 'tide', 'kelp', 'pearl', 'current', 'harbor', 'drift', 'lagoon', 'mantis', 'krill', 'shoal', 'cove'];

/** Lower-case label of [a-z0-9-], at most 40 chars, or '' when nothing usable remains. */
export function slugify(input: string): string {
  return input
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
}

export function wordPair(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}`;
}

/** First free label among base, base-2, base-3, ... given the taken ones. */
export function nextFreeSlug(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) {
    const candidate = `${base}-${i}`;
    if (!taken.has(candidate)) return candidate;
  }
}
