import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseJsonWith } from '../../shared/validation';

/**
 * Every process `npm start` starts (the Azurite services, training jobs, model APIs) is written
 * here, one file per process, and removed when the process is gone. A run killed with SIGKILL
 * cannot stop its children; the next `--resume` reads the ledger and stops what is still alive.
 * A pid is trusted only with the start time the kernel reports for it, so a reused pid that now
 * belongs to someone else is never signalled.
 */
const ENTRY_SCHEMA = z.object({
  name: z.string(),
  pid: z.number().int().positive(),
  /** Linux /proc/<pid>/stat field 22 (start time in clock ticks since boot); null elsewhere. */
  startTicks: z.string().nullable(),
  /** Stopped as a process group (detached containers) or as a single process (Azurite). */
  group: z.boolean(),
});
export type LedgerEntry = z.output<typeof ENTRY_SCHEMA>;

function startTicksOf(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; fields after the last ')' are fixed.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function alive(entry: LedgerEntry): boolean {
  if (!isProcessAlive(entry.pid)) return false;
  // Same pid, different start time: the pid was reused by an unrelated process.
  return entry.startTicks === null || startTicksOf(entry.pid) === entry.startTicks;
}

function signal(entry: LedgerEntry, sig: NodeJS.Signals): void {
  try {
    process.kill(entry.group ? -entry.pid : entry.pid, sig);
  } catch {
    // Gone meanwhile.
  }
}

export class ProcessLedger {
  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  private file(name: string, pid: number): string {
    return path.join(this.dir, `${name.replace(/[^a-z0-9-]/gi, '_')}.${pid}.json`);
  }

  record(name: string, pid: number, options: { group: boolean }): void {
    const entry: LedgerEntry = { name, pid, startTicks: startTicksOf(pid), group: options.group };
    fs.writeFileSync(this.file(name, pid), JSON.stringify(entry));
  }

  forget(name: string, pid: number): void {
    fs.rmSync(this.file(name, pid), { force: true });
  }

  entries(): LedgerEntry[] {
    return fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .flatMap((f) => {
        try {
          return [
            parseJsonWith(
              ENTRY_SCHEMA,
              fs.readFileSync(path.join(this.dir, f), 'utf8'),
              'process ledger entry',
            ),
          ];
        } catch {
          return []; // half-written by a killed run: nothing we could trust to signal
        }
      });
  }

  /** Processes of the ledger that are still running (what "containers left running" counts). */
  live(): LedgerEntry[] {
    return this.entries().filter(alive);
  }

  /**
   * Stops everything a killed run left: SIGINT first (Azurite's table service saves on SIGINT),
   * SIGKILL for whatever is still there after `graceMs`. Clears the ledger; returns what was alive.
   */
  async stopLeftovers(graceMs = 5_000): Promise<LedgerEntry[]> {
    const left = this.live();
    for (const entry of left) signal(entry, 'SIGINT');
    const deadline = Date.now() + graceMs;
    while (left.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const entry of left.filter(alive)) signal(entry, 'SIGKILL');
    while (left.some(alive) && Date.now() < deadline + 2_000) await new Promise((r) => setTimeout(r, 50));
    for (const entry of this.entries()) this.forget(entry.name, entry.pid);
    return left;
  }
}

/**
 * The identity a local host puts on the batch claims it takes: its pid and the kernel's start time
 * for it, so a later run can tell for sure that the claim's holder is gone (a reused pid has
 * another start time) and release the claim instead of waiting for its lease.
 */
export function hostIdentity(pid: number = process.pid): string {
  return `local-host:${pid}:${startTicksOf(pid) ?? 'unknown'}`;
}

/**
 * Whether a claim holder named by `hostIdentity` is a dead local host. Anything else (no identity,
 * another host kind, a start time this platform cannot read) counts as alive: its claim keeps its
 * lease.
 */
export function isDeadHost(holder: string): boolean {
  const match = /^local-host:(\d+):(\d+)$/.exec(holder);
  if (!match) return false;
  const entry: LedgerEntry = { name: 'host', pid: Number(match[1]), startTicks: match[2], group: false };
  return !alive(entry);
}
