import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessLedger, isProcessAlive } from '../../../functions/local/processLedger';

/**
 * What `npm start --resume` does about a run that was killed with SIGKILL: its children were
 * written to the ledger, so the next run finds and stops them, and never signals a pid that was
 * reused by someone else.
 */
function sleeper(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return new Promise((resolve) => child.once('spawn', () => resolve(child.pid!)));
}

it('stops the processes a killed run left, and forgets them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-'));
  const pid = await sleeper();
  try {
    new ProcessLedger(dir).record('train-abc', pid, { group: true });
    // A new run (a new ledger object over the same folder) finds it.
    const resumed = new ProcessLedger(dir);
    expect(resumed.live().map((e) => e.pid)).toEqual([pid]);
    const stopped = await resumed.stopLeftovers(2_000);
    expect(stopped.map((e) => e.name)).toEqual(['train-abc']);
    expect(isProcessAlive(pid)).toBe(false);
    expect(resumed.entries()).toEqual([]);
  } finally {
    if (isProcessAlive(pid)) process.kill(-pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('never signals a pid whose start time differs from the recorded one (a reused pid)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-'));
  const pid = await sleeper();
  try {
    const ledger = new ProcessLedger(dir);
    ledger.record('api-old', pid, { group: true });
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'))!;
    const entry = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { startTicks: string | null };
    if (entry.startTicks === null) return; // no /proc here: nothing to compare
    fs.writeFileSync(path.join(dir, file), JSON.stringify({ ...entry, startTicks: '1' }));
    expect(ledger.live()).toEqual([]);
    await ledger.stopLeftovers(500);
    expect(isProcessAlive(pid)).toBe(true);
  } finally {
    if (isProcessAlive(pid)) process.kill(-pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
