import { z } from 'zod';
import { parseWith } from '../../shared/validation';

/**
 * A named step at which `npm start` stops and waits (so the crash matrix can kill it exactly
 * there): `GREENML_CRASH_POINT=<activity>:<before|after>:<n>` pauses around the n-th call of an
 * activity, `GREENML_CRASH_POINT=batch:<n>` after the n-th batch was evaluated,
 * `GREENML_CRASH_POINT=upload:<n>` after the n-th weekly upload, before its blob event is
 * delivered, `GREENML_CRASH_POINT=evaluating:<n>` inside the n-th batch's evaluation, once its
 * claim and first journal step are stored (the claim is held, the batch not finished). Local demo only.
 */
export interface CrashPoint {
  kind: 'activity' | 'batch' | 'upload' | 'evaluating';
  label: string;
  matches(name: string, phase: 'before' | 'after', count?: number): boolean;
}

const POINT = z.union([
  z.string().regex(/^[A-Za-z]+:(before|after):[1-9][0-9]*$/),
  z.string().regex(/^(batch|upload|evaluating):[1-9][0-9]*$/),
]);

export function crashPointFromEnv(env: Record<string, string | undefined>): CrashPoint | null {
  const raw = env.GREENML_CRASH_POINT;
  if (!raw) return null;
  const label = parseWith(POINT, raw, 'GREENML_CRASH_POINT');
  const parts = label.split(':');
  if (parts[0] === 'batch' || parts[0] === 'upload' || parts[0] === 'evaluating') {
    const n = Number(parts[1]);
    return { kind: parts[0], label, matches: (_name, _phase, count) => count === n };
  }
  const [activity, wanted, nth] = parts;
  let seen = 0;
  return {
    kind: 'activity',
    label,
    matches: (name, phase) => name === activity && phase === wanted && ++seen === Number(nth),
  };
}
