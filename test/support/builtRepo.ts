import fs from 'node:fs';
import path from 'node:path';

/**
 * The repository root, checked to hold the compiled containers the local launcher starts. Suites
 * that run them call this at load time, so a missing build fails with one clear message instead of
 * a child process exiting on a missing file mid-test.
 */
export function builtRepoRoot(): string {
  const root = path.resolve(__dirname, '..', '..');
  if (!fs.existsSync(path.join(root, 'dist/containers/training/main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm ci runs it through the prepare script)');
  }
  return root;
}
