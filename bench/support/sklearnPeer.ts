import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Finds a Python that imports scikit-learn (Debian's python3-sklearn lives under /usr/bin/python3,
 * which a pyenv shim on PATH may hide). When none does and we are root on Debian, installs
 * python3-sklearn with apt-get, as the benchmark's own setup step; otherwise says why not.
 */
export type PythonWithSklearn =
  { kind: 'found'; python: string; version: string } | { kind: 'missing'; reason: string };

const CANDIDATES = ['/usr/bin/python3', 'python3'];

function probe(): PythonWithSklearn | undefined {
  for (const python of CANDIDATES) {
    const result = spawnSync(python, ['-c', 'import sklearn; print(sklearn.__version__)'], {
      encoding: 'utf8',
    });
    if (result.status === 0) return { kind: 'found', python, version: result.stdout.trim() };
  }
  return undefined;
}

export function findSklearn(log: (line: string) => void): PythonWithSklearn {
  const found = probe();
  if (found) return found;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    return {
      kind: 'missing',
      reason: 'not available (python3-sklearn not installed; needs root and apt-get to install)',
    };
  }
  log('scikit-learn not found: apt-get install -y python3-sklearn...\n');
  const install = (): number | null =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-sklearn'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status;
  if (install() !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore' });
    if (install() !== 0)
      return { kind: 'missing', reason: 'not available (apt-get install python3-sklearn failed)' };
  }
  return (
    probe() ?? { kind: 'missing', reason: 'not available (python3-sklearn installed but does not import)' }
  );
}

/** The Python script beside the compiled bench (dist/bench/support → bench/sklearnForest.py). */
export function sklearnScript(): string {
  return path.resolve(__dirname, '..', '..', '..', 'bench', 'sklearnForest.py');
}
