import { createHash } from 'node:crypto';
import { measureInvocation } from '../../../shared/sci/processUsage';

function burnCpu(rounds: number): string {
  let digest = 'seed';
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest('hex');
  return digest;
}

describe('measureInvocation', () => {
  test('returns the result with the CPU and wall time the invocation took', async () => {
    const measured = await measureInvocation(async () => burnCpu(200_000));
    expect(measured.result).toMatch(/^[0-9a-f]{64}$/);
    expect(measured.cpuSeconds).toBeGreaterThan(0);
    expect(measured.wallSeconds).toBeGreaterThan(0);
  });

  test('waiting is wall time, not CPU time', async () => {
    const measured = await measureInvocation(
      () => new Promise<string>((resolve) => setTimeout(() => resolve('done'), 120)),
    );
    expect(measured.result).toBe('done');
    // setTimeout never fires early, so this lower bound is not a timing race.
    expect(measured.wallSeconds).toBeGreaterThanOrEqual(0.1);
  });

  test('a failing invocation reports its usage and rethrows its own error', async () => {
    const failures: { cpuSeconds: number; wallSeconds: number; error: unknown }[] = [];
    const boom = new Error('boom');
    await expect(
      measureInvocation(
        async () => {
          burnCpu(50_000);
          throw boom;
        },
        { onFailure: (usage, error) => failures.push({ ...usage, error }) },
      ),
    ).rejects.toBe(boom);
    expect(failures).toHaveLength(1);
    expect(failures[0].error).toBe(boom);
    expect(failures[0].cpuSeconds).toBeGreaterThan(0);
  });

  test('a throwing onFailure never replaces the invocation error', async () => {
    const boom = new Error('original');
    await expect(
      measureInvocation(
        async () => {
          throw boom;
        },
        {
          onFailure: () => {
            throw new Error('recorder broke');
          },
        },
      ),
    ).rejects.toBe(boom);
  });
});
