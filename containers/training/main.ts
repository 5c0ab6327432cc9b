import { describeError, isGreenMlError, type ErrorCode } from '../../shared/errors';
import { runTraining } from './runTraining';

/**
 * Exit codes the orchestrator reads from the container state: 1 means the job itself was wrong
 * (settings, a missing batch or warm-start version, data with nothing to train on) and retrying it
 * unchanged cannot help; 2 means the run failed (storage, a corrupt artifact, a lost race, a bug).
 */
export const EXIT_BAD_INPUT = 1;
export const EXIT_RUN_FAILED = 2;

const BAD_INPUT_CODES: ReadonlySet<ErrorCode> = new Set([
  'CONFIG_INVALID',
  'VALIDATION_FAILED',
  'NOT_FOUND',
  'BATCH_UNREADABLE',
]);

export function exitCodeFor(error: unknown): typeof EXIT_BAD_INPUT | typeof EXIT_RUN_FAILED {
  return isGreenMlError(error) && BAD_INPUT_CODES.has(error.code) ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
}

/** One line for the container log; never the cause chain, which may carry request headers. */
export function failureLine(error: unknown): string {
  const what = isGreenMlError(error) ? `${error.code}: ${error.message}` : describeError(error);
  return `training failed: ${what}`;
}

async function main(): Promise<void> {
  try {
    const summary = await runTraining(process.env);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.exitCode = 0;
  } catch (error) {
    process.stderr.write(`${failureLine(error)}\n`);
    process.exitCode = exitCodeFor(error);
  }
  // Worker threads and SDK keep-alive sockets must not hold a finished container open.
  setImmediate(() => process.exit());
}

if (require.main === module) void main();
