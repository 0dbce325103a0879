/**
 * A V8 profile frame (CPU or heap profile `callFrame`) as one short line: the function and, for
 * code in a file, its path from `packages/` or `node_modules/` and its line (1-based).
 */
export function frameName(f) {
  const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(packages|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
}
