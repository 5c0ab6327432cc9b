import { crashPointFromEnv } from '../../../functions/local/crashPoint';

/** The crash matrix's step names: each must stop exactly once, at the step it names. */
describe('crash points', () => {
  it('pauses at the n-th call of an activity, in the named phase only', () => {
    const point = crashPointFromEnv({ GREENML_CRASH_POINT: 'switchServing:after:2' });
    expect(point?.kind).toBe('activity');
    const hits = [
      ['switchServing', 'before'],
      ['switchServing', 'after'],
      ['launchModelApi', 'after'],
      ['switchServing', 'after'],
      ['switchServing', 'after'],
    ].map(([name, phase]) => point?.matches(name, phase as 'before' | 'after'));
    expect(hits).toEqual([false, false, false, true, false]);
  });

  it('pauses after the n-th evaluated batch or the n-th upload', () => {
    const batch = crashPointFromEnv({ GREENML_CRASH_POINT: 'batch:1' });
    const upload = crashPointFromEnv({ GREENML_CRASH_POINT: 'upload:2' });
    expect([batch?.kind, upload?.kind]).toEqual(['batch', 'upload']);
    expect([0, 1, 2].map((n) => batch?.matches('batch', 'after', n))).toEqual([false, true, false]);
    expect([1, 2].map((n) => upload?.matches('upload', 'after', n))).toEqual([false, true]);
  });

  it('pauses inside the n-th batch evaluation', () => {
    const point = crashPointFromEnv({ GREENML_CRASH_POINT: 'evaluating:2' });
    expect(point?.kind).toBe('evaluating');
    expect([1, 2, 3].map((n) => point?.matches('evaluating', 'after', n))).toEqual([false, true, false]);
  });

  it('is off when unset and refuses a malformed point', () => {
    expect(crashPointFromEnv({})).toBeNull();
    for (const bad of ['training', 'batch:0', 'switchServing:during:1', 'upload:x', 'evaluating:0']) {
      expect(() => crashPointFromEnv({ GREENML_CRASH_POINT: bad })).toThrow(/GREENML_CRASH_POINT/);
    }
  });
});
