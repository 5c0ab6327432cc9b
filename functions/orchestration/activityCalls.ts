import type * as df from 'durable-functions';
import { ActivityFailedError } from '../../shared/errors';
import { retryDelayMs, type RetryPolicy } from '../../shared/errors/retryPolicy';
import {
  ACTIVITY_CONTRACTS,
  ACTIVITY_RESULT_SCHEMA,
  type ActivityInput,
  type ActivityName,
  type ActivityOutput,
} from '../../shared/pipeline/activityContracts';
import { parseWith } from '../../shared/validation';

/**
 * The orchestrator's typed activity call: the input is checked against the contract before it is
 * scheduled, the output after it returns. Failures come back classified (activities return them,
 * see ACTIVITY_RESULT_SCHEMA); the retry decision is `retryDelayMs`, waited out on a durable timer,
 * so a 403 or a validation error fails at once and a 429 waits as long as its Retry-After says.
 */
export type ActivityCall = <N extends ActivityName>(
  name: N,
  input: ActivityInput<N>,
) => Generator<df.Task, ActivityOutput<N>, unknown>;

export function activityCaller(ctx: df.OrchestrationContext, policy: RetryPolicy): ActivityCall {
  return function* call<N extends ActivityName>(name: N, input: ActivityInput<N>) {
    const contract = ACTIVITY_CONTRACTS[name];
    const checked: unknown = parseWith(contract.input, input, `${name} input`);
    for (let attempt = 1; ; attempt++) {
      const raw: unknown = yield ctx.df.callActivity(name, checked);
      const result = parseWith(ACTIVITY_RESULT_SCHEMA, raw, `${name} result`);
      if (result.ok) return parseWith(contract.output, result.value, `${name} output`) as ActivityOutput<N>;
      const delayMs = retryDelayMs(policy, attempt, result.failure);
      if (delayMs === null) throw new ActivityFailedError(name, result.failure, attempt);
      yield ctx.df.createTimer(new Date(ctx.df.currentUtcDateTime.getTime() + delayMs));
    }
  };
}
