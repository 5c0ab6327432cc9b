import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseJsonWith } from '../validation';

/**
 * CPU time and peak memory of one child process, measured two ways because neither covers every
 * case: a preload makes the child report `process.resourceUsage()` itself when it exits (exact,
 * includes every thread, survives the child reaping before we look), and /proc is sampled while it
 * runs (live figures, and the last word for a child killed by SIGKILL, which runs no exit hook).
 */
export interface MeasuredUsage {
  cpuSeconds: number;
  peakRssBytes: number;
}

/** Env var naming the file the preload writes. */
export const USAGE_FILE_ENV = 'GREENML_USAGE_FILE';

/**
 * Source of the preload (`node --require <file>`). Kept as text and written to a temp file at run
 * time so it works the same from ts-jest and from `dist/`. On SIGTERM it writes a snapshot and, if
 * the program has no SIGTERM handler of its own, exits as the default action would (128 + 15);
 * otherwise the program's graceful shutdown runs and the exit hook writes the final figures.
 */
export const USAGE_PRELOAD_SOURCE = `'use strict';
const fs = require('node:fs');
const file = process.env.${USAGE_FILE_ENV};
if (file) {
  const write = () => {
    try {
      const u = process.resourceUsage();
      fs.writeFileSync(file, JSON.stringify({
        userCpuMicros: u.userCPUTime,
        systemCpuMicros: u.systemCPUTime,
        maxRssKib: u.maxRSS,
      }));
    } catch (_) { /* measurement must never break the program */ }
  };
  process.on('exit', write);
  process.on('SIGTERM', () => {
    write();
    if (process.listenerCount('SIGTERM') === 1) process.exit(143);
  });
}
`;

const USAGE_FILE_SCHEMA = z.strictObject({
  userCpuMicros: z.number().nonnegative(),
  systemCpuMicros: z.number().nonnegative(),
  maxRssKib: z.number().nonnegative(),
});

/** What the preload wrote, or undefined when the child never got to write it. */
export async function readUsageFile(file: string): Promise<MeasuredUsage | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const raw = parseJsonWith(USAGE_FILE_SCHEMA, text, `usage file ${file}`);
  return {
    cpuSeconds: (raw.userCpuMicros + raw.systemCpuMicros) / 1e6,
    peakRssBytes: raw.maxRssKib * 1024,
  };
}

let clockTicksPerSecond: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every common Linux build). */
function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicksPerSecond = Number.isInteger(value) && value > 0 ? value : 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

/** Live usage of a running process from /proc; undefined when it is gone or /proc is unavailable. */
export async function sampleProcUsage(pid: number): Promise<MeasuredUsage | undefined> {
  try {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile(`/proc/${pid}/status`, 'utf8'),
    ]);
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    const utimeTicks = Number(fields[11]);
    const stimeTicks = Number(fields[12]);
    const hwm = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    if (!Number.isFinite(utimeTicks) || !Number.isFinite(stimeTicks) || !hwm) return undefined;
    return {
      cpuSeconds: (utimeTicks + stimeTicks) / clockTicks(),
      peakRssBytes: Number(hwm[1]) * 1024,
    };
  } catch {
    return undefined;
  }
}
