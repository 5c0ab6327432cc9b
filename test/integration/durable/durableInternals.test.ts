import fs from 'node:fs';
import path from 'node:path';
import * as df from 'durable-functions';
import {
  ActionType,
  EventType,
  OUT_OF_PROC_DATA,
  VERIFIED_DURABLE_FUNCTIONS_VERSION,
} from '../../../functions/local/durableRuntime';

/**
 * Pins the durable-functions internals the local Durable emulator relies on (listed in the header
 * of functions/local/durableRuntime.ts). Each assertion names what to re-check when it fails after
 * an upgrade, instead of letting `npm start` and the orchestration tests misbehave quietly.
 */
const libRoot = path.dirname(require.resolve('durable-functions/package.json'));
/* eslint-disable @typescript-eslint/no-require-imports */
const internal = (relative: string): Record<string, unknown> =>
  require(path.join(libRoot, 'lib/src', relative)) as Record<string, unknown>;
/* eslint-enable @typescript-eslint/no-require-imports */

interface Listener {
  (binding: unknown, ctx: unknown): Promise<unknown>;
}
const testingUtils = internal('util/testingUtils') as {
  createOrchestrator?: (fn: df.OrchestrationHandler) => Listener;
  DurableOrchestrationInput?: new (...args: unknown[]) => unknown;
};

function episode(fn: df.OrchestrationHandler, history: unknown[], input: unknown): Promise<unknown> {
  const listener = testingUtils.createOrchestrator!(fn);
  const binding = new testingUtils.DurableOrchestrationInput!(
    'pin-1',
    history,
    input,
    undefined,
    undefined,
    undefined,
    0,
  );
  return listener(binding, new df.DummyOrchestrationContext('pinned', 'pin-1', () => {}));
}

const started = (input: unknown) => [
  {
    EventType: EventType.OrchestratorStarted,
    EventId: -1,
    IsPlayed: false,
    Timestamp: '2024-09-02T08:00:00.000Z',
  },
  {
    EventType: EventType.ExecutionStarted,
    EventId: -1,
    IsPlayed: false,
    Timestamp: '2024-09-02T08:00:00.000Z',
    Name: 'pinned',
    Input: JSON.stringify(input),
  },
];

describe('durable-functions internals used by the local Durable emulator', () => {
  it(`is the version the emulator was verified against (${VERIFIED_DURABLE_FUNCTIONS_VERSION})`, () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(libRoot, 'package.json'), 'utf8')) as {
      version: string;
    };
    // On failure: re-run this suite against the new version, re-check every item in the header of
    // functions/local/durableRuntime.ts, then update VERIFIED_DURABLE_FUNCTIONS_VERSION.
    expect(version).toBe(VERIFIED_DURABLE_FUNCTIONS_VERSION);
  });

  it('exposes the replay entry points in util/testingUtils', () => {
    expect(typeof testingUtils.createOrchestrator).toBe('function');
    expect(typeof testingUtils.DurableOrchestrationInput).toBe('function');
    expect(typeof df.DummyOrchestrationContext).toBe('function');
  });

  it('numbers actions and history events as the emulator does', () => {
    const libActions = internal('actions/ActionType').ActionType as Record<string, number>;
    const libEvents = internal('history/HistoryEventType').HistoryEventType as Record<string, number>;
    for (const [name, value] of Object.entries(ActionType))
      expect([name, libActions[name]]).toEqual([name, value]);
    for (const [name, value] of Object.entries(EventType))
      expect([name, libEvents[name]]).toEqual([name, value]);
  });

  it('returns OrchestratorState with the action fields the emulator reads', async () => {
    const retry = new df.RetryOptions(1000, 3);
    const state = (await episode(
      function* (ctx) {
        yield ctx.df.Task.all([
          ctx.df.callActivity('a', 'text input'),
          ctx.df.callActivityWithRetry('b', retry, { n: 1 }),
          ctx.df.createTimer(new Date('2024-09-02T09:00:00.000Z')),
          ctx.df.waitForExternalEvent('go'),
        ]);
      },
      started({ x: 1 }),
      { x: 1 },
    )) as { isDone: boolean; actions: Record<string, unknown>[][]; customStatus?: unknown };
    expect(state.isDone).toBe(false);
    const actions = state.actions.flat();
    expect(actions[0]).toMatchObject({
      actionType: ActionType.CallActivity,
      functionName: 'a',
      input: '"text input"',
    });
    expect(actions[1]).toMatchObject({
      actionType: ActionType.CallActivityWithRetry,
      functionName: 'b',
      input: { n: 1 },
      retryOptions: { firstRetryIntervalInMilliseconds: 1000, maxNumberOfAttempts: 3 },
    });
    expect(actions[2]).toMatchObject({ actionType: ActionType.CreateTimer, isCanceled: false });
    expect(new Date(actions[2].fireAt as string).toISOString()).toBe('2024-09-02T09:00:00.000Z');
    expect(actions[3]).toMatchObject({ actionType: ActionType.WaitForExternalEvent });
  });

  it('replays a completed task from PascalCase history events', async () => {
    const history = [
      ...started(null),
      {
        EventType: EventType.TaskScheduled,
        EventId: 0,
        IsPlayed: false,
        Timestamp: '2024-09-02T08:00:00.000Z',
        Name: 'a',
      },
      {
        EventType: EventType.OrchestratorCompleted,
        EventId: -1,
        IsPlayed: false,
        Timestamp: '2024-09-02T08:00:00.000Z',
      },
      {
        EventType: EventType.OrchestratorStarted,
        EventId: -1,
        IsPlayed: false,
        Timestamp: '2024-09-02T08:01:00.000Z',
      },
      {
        EventType: EventType.TaskCompleted,
        EventId: -1,
        IsPlayed: false,
        Timestamp: '2024-09-02T08:01:00.000Z',
        TaskScheduledId: 0,
        Result: JSON.stringify({ answer: 42 }),
      },
    ];
    const state = (await episode(
      function* (ctx) {
        const result: unknown = yield ctx.df.callActivity('a');
        return result;
      },
      history,
      null,
    )) as { isDone: boolean; output: unknown };
    expect(state).toMatchObject({ isDone: true, output: { answer: 42 } });
  });

  it('reports a thrown orchestrator as a message ending in $OutOfProcData$ with its state', async () => {
    const failure = await episode(
      // eslint-disable-next-line require-yield
      function* (ctx) {
        ctx.df.setCustomStatus({ step: 'before the throw' });
        throw new Error('boom');
      },
      started(null),
      null,
    ).catch((error: unknown) => error);
    const match = OUT_OF_PROC_DATA.exec(failure instanceof Error ? failure.message : String(failure));
    expect(match).not.toBeNull();
    const state = JSON.parse(match![1]) as { isDone: boolean; error?: string; customStatus?: unknown };
    expect(state.error).toMatch(/boom/);
    expect(state.customStatus).toEqual({ step: 'before the throw' });
  });
});
