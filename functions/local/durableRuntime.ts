import { createHash } from 'node:crypto';
import * as df from 'durable-functions';
import { InvocationContext } from '@azure/functions';
import { ConflictError, InternalError, NotFoundError, describeError } from '../../shared/errors';
import type {
  DurableStore,
  InstanceRecord,
  PendingWork,
  RuntimeStatus,
  StoredHistoryEvent,
} from './durableStore';

/**
 * Runs Durable Functions orchestrations without the Functions host, through the library's own
 * replay engine: each episode hands the full history to the registered generator (exactly what
 * the host does), diffs the returned actions against what earlier episodes emitted (the host's
 * non-determinism check, which the JS library lacks), and turns new actions into work (activity
 * calls, timers). History and pending work are persisted after every episode, so a killed process
 * resumes where it stopped; activities are at-least-once, as on Azure.
 *
 * Time is a clock the caller owns: timers fire when the caller advances it, which lets the demo
 * and the tests run days of virtual time in seconds.
 *
 * PINNED INTERNALS. The library has no public replay API, so this emulator relies on parts of
 * durable-functions that are private or `@hidden` (test/integration/durable/durableInternals.test.ts
 * fails loudly when an upgrade changes any of them; VERIFIED_DURABLE_FUNCTIONS_VERSION names the
 * version they were checked against):
 * 1. module `durable-functions/lib/src/util/testingUtils`: `createOrchestrator(fn)` (the host's
 *    listener) and `DurableOrchestrationInput` with its positional constructor
 *    (instanceId, history, input, longRunningTimerIntervalDuration, maximumShortTimerDuration,
 *    defaultHttpAsyncRequestSleepTimeMillseconds, schemaVersion, isReplaying);
 * 2. the listener's result, `OrchestratorState` (@hidden): `{ isDone, actions: IAction[][], output,
 *    error, customStatus }`, and its failure encoding: a thrown Error whose message ends with
 *    `$OutOfProcData$:<OrchestratorState JSON>` (error/OrchestrationFailureError);
 * 3. `ActionType` numbers (actions/ActionType) and the action fields read here: functionName,
 *    input (JSON-encoded by Utils.processInput when a string), retryOptions, fireAt, isCanceled;
 * 4. `HistoryEventType` numbers (history/HistoryEventType) and the PascalCase history fields the
 *    replay reads: EventType, EventId, IsPlayed, Timestamp, Name, Input, Result, TaskScheduledId,
 *    TimerId, FireAt, Reason, Details;
 * 5. the public `df.DummyOrchestrationContext` as the invocation context of an episode.
 */

// The library exposes its replay entry points only as internals; durable-functions is pinned.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const testingUtils = require('durable-functions/lib/src/util/testingUtils') as {
  createOrchestrator(
    fn: df.OrchestrationHandler,
  ): (binding: unknown, ctx: InvocationContext) => Promise<unknown>;
  DurableOrchestrationInput: new (
    instanceId: string,
    history: unknown[],
    input: unknown,
    longRunningTimerIntervalDuration?: string,
    maximumShortTimerDuration?: string,
    defaultHttpAsyncRequestSleepTimeMillseconds?: number,
    schemaVersion?: number,
    isReplaying?: boolean,
  ) => unknown;
};

/** The durable-functions version whose internals (above) this emulator was checked against. */
export const VERIFIED_DURABLE_FUNCTIONS_VERSION = '3.5.0';

export const EventType = {
  ExecutionStarted: 0,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventRaised: 15,
} as const;

/** How the library reports an orchestrator that threw: its state JSON after this label. */
export const OUT_OF_PROC_DATA = /\$OutOfProcData\$:([\s\S]*)$/;

export const ActionType = {
  CallActivity: 0,
  CallActivityWithRetry: 1,
  ContinueAsNew: 4,
  CreateTimer: 5,
  WaitForExternalEvent: 6,
} as const;

interface EmittedAction {
  actionType: number;
  functionName?: string;
  input?: unknown;
  retryOptions?: {
    firstRetryIntervalInMilliseconds: number;
    maxNumberOfAttempts: number;
    backoffCoefficient?: number;
    maxRetryIntervalInMilliseconds?: number;
  };
  fireAt?: string | Date;
  isCanceled?: boolean;
  externalEventName?: string;
}

interface OrchestratorState {
  isDone: boolean;
  actions: EmittedAction[][];
  output?: unknown;
  error?: string;
  customStatus?: unknown;
}

export type ActivityHandler = (input: unknown, context: InvocationContext) => Promise<unknown> | unknown;

export interface DurableStatus {
  instanceId: string;
  name: string;
  runtimeStatus: RuntimeStatus;
  input: unknown;
  output: unknown;
  customStatus: unknown;
  error: string | null;
  createdAt: string;
  lastUpdatedAt: string;
}

export interface LocalDurableRuntimeOptions {
  store: DurableStore;
  now: () => Date;
  orchestrations: Record<string, df.OrchestrationHandler>;
  activities: Record<string, ActivityHandler>;
  log?: (message: string) => void;
}

const ACTIVE: readonly RuntimeStatus[] = ['Pending', 'Running'];

export class NonDeterministicOrchestrationError extends InternalError {}

export class LocalDurableRuntime {
  private readonly listeners = new Map<
    string,
    (binding: unknown, ctx: InvocationContext) => Promise<unknown>
  >();

  constructor(private readonly options: LocalDurableRuntimeOptions) {
    for (const [name, handler] of Object.entries(options.orchestrations)) {
      this.listeners.set(name, testingUtils.createOrchestrator(handler));
    }
  }

  /** Starts an instance; like the host's default, refuses to replace one that is still active. */
  async startNew(name: string, options: { instanceId: string; input?: unknown }): Promise<string> {
    if (!this.listeners.has(name)) throw new NotFoundError(`No orchestration named ${name}`);
    const existing = await this.options.store.getInstance(options.instanceId);
    if (existing && ACTIVE.includes(existing.status)) {
      throw new ConflictError(`An active instance with ID '${options.instanceId}' already exists.`);
    }
    const nowIso = this.options.now().toISOString();
    const record: InstanceRecord = {
      instanceId: options.instanceId,
      name,
      status: 'Pending',
      input: options.input ?? null,
      output: null,
      customStatus: null,
      error: null,
      createdAt: nowIso,
      lastUpdatedAt: nowIso,
      execution: (existing?.execution ?? 0) + 1,
      nextTaskId: 0,
      historyLength: 0,
      actionKeys: [],
      actionTaskIds: [],
      pending: [{ kind: 'start', dueAt: nowIso }],
    };
    await this.options.store.putInstance(record, existing?.etag ?? null);
    return options.instanceId;
  }

  /** Queued outside the instance record, so raising never races an episode that is writing it. */
  async raiseEvent(instanceId: string, eventName: string, data: unknown): Promise<void> {
    const record = await this.options.store.getInstance(instanceId);
    if (!record || !ACTIVE.includes(record.status)) {
      throw new NotFoundError(`No active instance ${instanceId} to raise ${eventName} on`);
    }
    await this.options.store.enqueueEvent(instanceId, {
      name: eventName,
      data: data ?? null,
      raisedAt: this.options.now().toISOString(),
    });
  }

  async getStatus(instanceId: string): Promise<DurableStatus | null> {
    const r = await this.options.store.getInstance(instanceId);
    if (!r) return null;
    return {
      instanceId: r.instanceId,
      name: r.name,
      runtimeStatus: r.status,
      input: r.input,
      output: r.output,
      customStatus: r.customStatus,
      error: r.error,
      createdAt: r.createdAt,
      lastUpdatedAt: r.lastUpdatedAt,
    };
  }

  async terminate(instanceId: string, reason: string): Promise<void> {
    const record = await this.options.store.getInstance(instanceId);
    if (!record || !ACTIVE.includes(record.status)) return;
    record.status = 'Terminated';
    record.error = reason;
    record.pending = [];
    record.lastUpdatedAt = this.options.now().toISOString();
    await this.options.store.putInstance(record, record.etag ?? null);
  }

  /** Earliest time any instance has work due, or null when everything is idle or waiting for events. */
  async nextDueAt(): Promise<Date | null> {
    let earliest: number | null = null;
    for (const record of await this.options.store.listActiveInstances()) {
      for (const work of record.pending) {
        const at = Date.parse(work.dueAt);
        if (earliest === null || at < earliest) earliest = at;
      }
    }
    return earliest === null ? null : new Date(earliest);
  }

  /** Processes every work item due at or before the clock's now, one episode per item. */
  async runDue(maxEpisodes = 10_000): Promise<number> {
    let episodes = 0;
    for (;;) {
      const nowMs = this.options.now().getTime();
      const candidates = (await this.options.store.listActiveInstances())
        .map((r) => ({ r, due: r.pending.filter((w) => Date.parse(w.dueAt) <= nowMs) }))
        .filter((c) => c.due.length > 0);
      if (candidates.length === 0) return episodes;
      for (const { r, due } of candidates) {
        due.sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt));
        await this.processWork(r, due[0]);
        if (++episodes >= maxEpisodes)
          throw new InternalError('episode limit reached: orchestration is looping');
      }
    }
  }

  private async processWork(record: InstanceRecord, work: PendingWork): Promise<void> {
    record.pending = record.pending.filter((w) => w !== work);
    const now = this.options.now();
    const stamp = (fields: Record<string, unknown>): StoredHistoryEvent =>
      ({ EventId: -1, IsPlayed: false, Timestamp: now.toISOString(), ...fields }) as StoredHistoryEvent;
    const newEvents: StoredHistoryEvent[] = [];
    switch (work.kind) {
      case 'start':
        record.status = 'Running';
        newEvents.push(
          stamp({ EventType: EventType.OrchestratorStarted }),
          stamp({
            EventType: EventType.ExecutionStarted,
            Name: record.name,
            Input: JSON.stringify(record.input),
          }),
        );
        break;
      case 'activity': {
        const outcome = await this.runActivity(record, work.functionName, work.input);
        newEvents.push(stamp({ EventType: EventType.OrchestratorStarted }));
        if (outcome.ok) {
          newEvents.push(
            stamp({
              EventType: EventType.TaskCompleted,
              TaskScheduledId: work.taskId,
              Result: JSON.stringify(outcome.value ?? null),
            }),
          );
        } else {
          newEvents.push(
            stamp({
              EventType: EventType.TaskFailed,
              TaskScheduledId: work.taskId,
              Reason: outcome.message,
              Details: outcome.message,
            }),
          );
          const retry = work.retry;
          if (retry) {
            // The host, not the library, retries: it writes a timer, then reschedules on fire.
            const delayMs = Math.min(
              retry.firstRetryIntervalInMilliseconds *
                Math.pow(retry.backoffCoefficient ?? 1, work.attempt - 1),
              retry.maxRetryIntervalInMilliseconds || Number.MAX_SAFE_INTEGER,
            );
            const timerId = record.nextTaskId++;
            const fireAt = new Date(now.getTime() + delayMs).toISOString();
            newEvents.push(stamp({ EventType: EventType.TimerCreated, EventId: timerId, FireAt: fireAt }));
            record.pending.push({
              kind: 'timer',
              timerId,
              dueAt: fireAt,
              retryOf:
                work.attempt < retry.maxNumberOfAttempts
                  ? { functionName: work.functionName, input: work.input, retry, attempt: work.attempt + 1 }
                  : undefined,
            });
          }
        }
        break;
      }
      case 'timer':
        newEvents.push(
          stamp({ EventType: EventType.OrchestratorStarted }),
          stamp({ EventType: EventType.TimerFired, TimerId: work.timerId, FireAt: work.dueAt }),
        );
        if (work.retryOf) {
          const taskId = record.nextTaskId++;
          newEvents.push(
            stamp({
              EventType: EventType.TaskScheduled,
              EventId: taskId,
              Name: work.retryOf.functionName,
              Input: JSON.stringify(work.retryOf.input),
            }),
          );
          record.pending.push({
            kind: 'activity',
            taskId,
            functionName: work.retryOf.functionName,
            input: work.retryOf.input,
            retry: work.retryOf.retry,
            attempt: work.retryOf.attempt,
            dueAt: now.toISOString(),
          });
        }
        break;
      case 'event':
        newEvents.push(
          stamp({ EventType: EventType.OrchestratorStarted }),
          stamp({
            EventType: EventType.EventRaised,
            Name: work.name,
            Input: JSON.stringify(work.data ?? null),
          }),
        );
        break;
    }
    await this.append(record, newEvents);
    await this.episode(record);
  }

  private async runActivity(
    record: InstanceRecord,
    functionName: string,
    input: unknown,
  ): Promise<{ ok: true; value: unknown } | { ok: false; message: string }> {
    const handler = this.options.activities[functionName];
    if (!handler) return { ok: false, message: `No activity named ${functionName}` };
    const context = new InvocationContext({
      functionName,
      invocationId: `${record.instanceId}:${record.nextTaskId}:${Date.now()}`,
      logHandler: (_level, ...args) => this.options.log?.(`[${functionName}] ${args.map(String).join(' ')}`),
    });
    try {
      return { ok: true, value: await handler(input, context) };
    } catch (error) {
      return { ok: false, message: describeError(error) };
    }
  }

  private async episode(record: InstanceRecord): Promise<void> {
    const listener = this.listeners.get(record.name);
    if (!listener) throw new NotFoundError(`No orchestration named ${record.name}`);
    const history = await this.options.store.readHistory(record.instanceId, record.execution);
    const binding = new testingUtils.DurableOrchestrationInput(
      record.instanceId,
      history,
      record.input,
      undefined,
      undefined,
      undefined,
      0,
    );
    const context = new df.DummyOrchestrationContext(
      record.name,
      `${record.instanceId}:${history.length}`,
      () => {},
    );
    let state: OrchestratorState;
    try {
      state = (await listener(binding, context)) as OrchestratorState;
    } catch (error) {
      const match = OUT_OF_PROC_DATA.exec(describeError(error));
      const failed = match ? (JSON.parse(match[1]) as OrchestratorState) : null;
      record.status = 'Failed';
      record.error = failed?.error ?? describeError(error);
      record.customStatus = failed?.customStatus ?? record.customStatus;
      await this.finishEpisode(record);
      return;
    }
    record.customStatus = state.customStatus ?? null;
    const flat = state.actions.flat();
    const keys = flat.map((a) => actionKey(a));
    for (let i = 0; i < record.actionKeys.length; i++) {
      if (keys[i] !== record.actionKeys[i]) {
        record.status = 'Failed';
        record.error = `Non-deterministic workflow detected: action #${i} differs on replay`;
        await this.finishEpisode(record);
        throw new NonDeterministicOrchestrationError(record.error);
      }
    }
    // Cancelled timers are flagged on actions already emitted; forget their pending fire.
    flat.forEach((action, i) => {
      if (
        action.actionType === ActionType.CreateTimer &&
        action.isCanceled &&
        i < record.actionTaskIds.length
      ) {
        const timerId = record.actionTaskIds[i];
        record.pending = record.pending.filter((w) => !(w.kind === 'timer' && w.timerId === timerId));
      }
    });
    const fresh = flat.slice(record.actionKeys.length);
    const nowIso = this.options.now().toISOString();
    const scheduled: StoredHistoryEvent[] = [];
    for (const action of fresh) {
      let taskId = -1;
      if (action.actionType === ActionType.ContinueAsNew) {
        await this.continueAsNew(record, action.input);
        return;
      }
      if (
        action.actionType === ActionType.CallActivity ||
        action.actionType === ActionType.CallActivityWithRetry
      ) {
        taskId = record.nextTaskId++;
        const input = decodeInput(action.input);
        scheduled.push({
          EventType: EventType.TaskScheduled,
          EventId: taskId,
          IsPlayed: false,
          Timestamp: nowIso,
          Name: action.functionName,
          Input: JSON.stringify(input),
        } as StoredHistoryEvent);
        record.pending.push({
          kind: 'activity',
          taskId,
          functionName: action.functionName ?? '',
          input,
          retry: action.actionType === ActionType.CallActivityWithRetry ? action.retryOptions : undefined,
          attempt: 1,
          dueAt: nowIso,
        });
      } else if (action.actionType === ActionType.CreateTimer) {
        taskId = record.nextTaskId++;
        const fireAt = new Date(action.fireAt ?? nowIso).toISOString();
        scheduled.push({
          EventType: EventType.TimerCreated,
          EventId: taskId,
          IsPlayed: false,
          Timestamp: nowIso,
          FireAt: fireAt,
        } as StoredHistoryEvent);
        if (!action.isCanceled) record.pending.push({ kind: 'timer', timerId: taskId, dueAt: fireAt });
      } else if (action.actionType !== ActionType.WaitForExternalEvent) {
        throw new InternalError(`Unsupported orchestrator action ${action.actionType} in the local runtime`);
      }
      record.actionTaskIds.push(taskId);
    }
    record.actionKeys = keys;
    if (state.isDone) {
      record.status = 'Completed';
      record.output = state.output ?? null;
      record.pending = [];
    }
    scheduled.push({
      EventType: EventType.OrchestratorCompleted,
      EventId: -1,
      IsPlayed: false,
      Timestamp: nowIso,
    } as StoredHistoryEvent);
    await this.append(record, scheduled);
    await this.finishEpisode(record);
  }

  private async append(record: InstanceRecord, events: StoredHistoryEvent[]): Promise<void> {
    await this.options.store.appendHistory(record.instanceId, record.execution, record.historyLength, events);
    record.historyLength += events.length;
  }

  private async continueAsNew(record: InstanceRecord, input: unknown): Promise<void> {
    const nowIso = this.options.now().toISOString();
    record.execution += 1;
    record.input = decodeInput(input);
    record.historyLength = 0;
    record.nextTaskId = 0;
    record.actionKeys = [];
    record.actionTaskIds = [];
    // Raised events that have not been consumed carry over, as on Azure.
    record.pending = [{ kind: 'start', dueAt: nowIso }, ...record.pending.filter((w) => w.kind === 'event')];
    await this.finishEpisode(record);
  }

  private async finishEpisode(record: InstanceRecord): Promise<void> {
    record.lastUpdatedAt = this.options.now().toISOString();
    if (record.status !== 'Running' && record.status !== 'Pending') record.pending = [];
    await this.options.store.putInstance(record, record.etag ?? null);
  }
}

/** Strings are JSON-encoded by the library when emitted (Utils.processInput); other values are raw. */
function decodeInput(input: unknown): unknown {
  if (typeof input !== 'string') return input ?? null;
  try {
    return JSON.parse(input);
  } catch {
    return input;
  }
}

function actionKey(action: EmittedAction): string {
  const { isCanceled: _ignored, ...rest } = action;
  return createHash('sha1').update(JSON.stringify(rest)).digest('base64').slice(0, 12);
}
