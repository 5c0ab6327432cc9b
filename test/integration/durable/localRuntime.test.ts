import * as df from 'durable-functions';
import { LocalDurableRuntime, type ActivityHandler } from '../../../functions/local/durableRuntime';
import { TableDurableStore } from '../../../functions/local/durableStore';
import { testStorage, uniqueName } from '../../support/storage';

/** A clock the test moves by hand, so timers fire without waiting. */
function manualClock(startIso: string) {
  let nowMs = Date.parse(startIso);
  return { now: () => new Date(nowMs), advanceTo: (d: Date) => (nowMs = Math.max(nowMs, d.getTime())) };
}

async function drain(runtime: LocalDurableRuntime, clock: ReturnType<typeof manualClock>): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    await runtime.runDue();
    const next = await runtime.nextDueAt();
    if (!next) return;
    clock.advanceTo(next);
  }
  throw new Error('did not settle');
}

async function newStore() {
  const storage = testStorage();
  return TableDurableStore.create(storage.tables, storage.table, uniqueName('hub'));
}

const flaky: { failuresLeft: number } = { failuresLeft: 0 };
const activities: Record<string, ActivityHandler> = {
  double: (x) => (x as number) * 2,
  flaky: () => {
    if (flaky.failuresLeft-- > 0) throw new Error('transient');
    return 'ok';
  },
};

const sample: df.OrchestrationHandler = function* (ctx) {
  const input = ctx.df.getInput() as { n: number };
  ctx.df.setCustomStatus({ step: 'doubling' });
  const doubled: number = yield ctx.df.callActivity('double', input.n);
  const retry = new df.RetryOptions(1000, 3);
  retry.backoffCoefficient = 2;
  const flakyResult: string = yield ctx.df.callActivityWithRetry('flaky', retry, null);
  const timer = ctx.df.createTimer(new Date(ctx.df.currentUtcDateTime.getTime() + 3_600_000));
  const approval = ctx.df.waitForExternalEvent('approve');
  const winner: unknown = yield ctx.df.Task.any([timer, approval]);
  if (winner === approval) timer.cancel();
  ctx.df.setCustomStatus({ step: 'done' });
  return {
    doubled,
    flakyResult,
    approved: winner === approval ? approval.result : null,
    at: ctx.df.currentUtcDateTime.toISOString(),
  };
};

describe('LocalDurableRuntime (real durable-functions replay, history in Azurite tables)', () => {
  it('runs activities, host-style retries and timers on virtual time', async () => {
    const clock = manualClock('2024-01-01T00:00:00Z');
    const runtime = new LocalDurableRuntime({
      store: await newStore(),
      now: clock.now,
      orchestrations: { sample },
      activities,
    });
    flaky.failuresLeft = 2;
    await runtime.startNew('sample', { instanceId: 'a', input: { n: 21 } });
    await drain(runtime, clock);
    const status = await runtime.getStatus('a');
    expect(status?.runtimeStatus).toBe('Completed');
    // two failures: retry timers after 1 s and 2 s, then the 1-hour timer wins (no approval raised)
    expect(status?.output).toEqual({
      doubled: 42,
      flakyResult: 'ok',
      approved: null,
      at: '2024-01-01T01:00:03.000Z',
    });
    expect(status?.customStatus).toEqual({ step: 'done' });
  });

  it('fails the instance when retries are exhausted', async () => {
    const clock = manualClock('2024-01-01T00:00:00Z');
    const runtime = new LocalDurableRuntime({
      store: await newStore(),
      now: clock.now,
      orchestrations: { sample },
      activities,
    });
    flaky.failuresLeft = 5;
    await runtime.startNew('sample', { instanceId: 'b', input: { n: 1 } });
    await drain(runtime, clock);
    const status = await runtime.getStatus('b');
    expect(status?.runtimeStatus).toBe('Failed');
    expect(status?.error).toMatch(/transient/);
  });

  it('delivers external events and cancels the losing timer', async () => {
    const clock = manualClock('2024-01-01T00:00:00Z');
    const runtime = new LocalDurableRuntime({
      store: await newStore(),
      now: clock.now,
      orchestrations: { sample },
      activities,
    });
    flaky.failuresLeft = 0;
    await runtime.startNew('sample', { instanceId: 'c', input: { n: 2 } });
    await runtime.runDue();
    await runtime.raiseEvent('c', 'approve', { by: 'ops' });
    await runtime.runDue();
    const status = await runtime.getStatus('c');
    expect(status?.runtimeStatus).toBe('Completed');
    expect(status?.output).toMatchObject({ approved: { by: 'ops' }, at: '2024-01-01T00:00:00.000Z' });
    expect(await runtime.nextDueAt()).toBeNull();
  });

  it('refuses a second start of an active singleton instance', async () => {
    const clock = manualClock('2024-01-01T00:00:00Z');
    const runtime = new LocalDurableRuntime({
      store: await newStore(),
      now: clock.now,
      orchestrations: { sample },
      activities,
    });
    await runtime.startNew('sample', { instanceId: 'single', input: { n: 1 } });
    await expect(runtime.startNew('sample', { instanceId: 'single', input: { n: 2 } })).rejects.toThrow(
      /active instance/,
    );
  });

  it('resumes from stored history after a restart', async () => {
    const clock = manualClock('2024-01-01T00:00:00Z');
    const store = await newStore();
    flaky.failuresLeft = 0;
    const first = new LocalDurableRuntime({ store, now: clock.now, orchestrations: { sample }, activities });
    await first.startNew('sample', { instanceId: 'r', input: { n: 5 } });
    await first.runDue(); // now waiting on the timer / event
    expect((await first.getStatus('r'))?.runtimeStatus).toBe('Running');
    const second = new LocalDurableRuntime({ store, now: clock.now, orchestrations: { sample }, activities });
    await drain(second, clock);
    expect((await second.getStatus('r'))?.output).toMatchObject({ doubled: 10, flakyResult: 'ok' });
  });

  it('detects a non-deterministic orchestrator', async () => {
    const clock = manualClock('2024-01-01T00:00:00Z');
    let calls = 0;
    const unstable: df.OrchestrationHandler = function* (ctx) {
      // Reads state outside the history: a different activity on replay.
      yield ctx.df.callActivity(calls++ === 0 ? 'double' : 'flaky', 1);
      yield ctx.df.createTimer(new Date(ctx.df.currentUtcDateTime.getTime() + 1000));
      return 'never';
    };
    const runtime = new LocalDurableRuntime({
      store: await newStore(),
      now: clock.now,
      orchestrations: { unstable },
      activities,
    });
    await runtime.startNew('unstable', { instanceId: 'nd' });
    await expect(drain(runtime, clock)).rejects.toThrow(/Non-deterministic/);
    expect((await runtime.getStatus('nd'))?.runtimeStatus).toBe('Failed');
  });

  it('continues as new with fresh history', async () => {
    const clock = manualClock('2024-01-01T00:00:00Z');
    const counter: df.OrchestrationHandler = function* (ctx) {
      const n = ctx.df.getInput() as number;
      yield ctx.df.createTimer(new Date(ctx.df.currentUtcDateTime.getTime() + 60_000));
      if (n < 3) {
        ctx.df.continueAsNew(n + 1);
        return undefined;
      }
      return n;
    };
    const runtime = new LocalDurableRuntime({
      store: await newStore(),
      now: clock.now,
      orchestrations: { counter },
      activities,
    });
    await runtime.startNew('counter', { instanceId: 'loop', input: 0 });
    await drain(runtime, clock);
    const status = await runtime.getStatus('loop');
    expect(status?.output).toBe(3);
    expect(clock.now().toISOString()).toBe('2024-01-01T00:04:00.000Z');
  });
});
