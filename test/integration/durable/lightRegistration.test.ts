import { execFileSync } from 'node:child_process';
import path from 'node:path';
import * as df from 'durable-functions';

/**
 * functions/index.ts registers the Durable functions with @azure/functions directly, from
 * durable-functions' own trigger and input modules, and runtime.ts applies the two handler
 * wrappers `df.app.*` adds. These tests pin the durable-functions internals that relies on (they
 * fail loudly if an upgrade moves them) and check that registering loads none of the pipeline.
 */
const REPO_ROOT = path.resolve(__dirname, '../../..');

// eslint-disable-next-line @typescript-eslint/no-require-imports
const internal = (name: string): unknown => require(`durable-functions/lib/src/${name}`);

describe('registration without loading durable-functions', () => {
  it('uses the same binding definitions df.app registers', () => {
    const trigger = internal('trigger') as typeof df.trigger;
    const input = internal('input') as typeof df.input;
    expect(trigger.orchestration()).toStrictEqual(df.trigger.orchestration());
    expect(trigger.activity()).toStrictEqual(df.trigger.activity());
    expect(input.durableClient()).toStrictEqual(df.input.durableClient());
    expect(trigger.orchestration()).toMatchObject({ type: 'orchestrationTrigger' });
    expect(trigger.activity()).toMatchObject({ type: 'activityTrigger' });
    expect(input.durableClient()).toMatchObject({ type: 'durableClient' });
  });

  it('finds the handler wrappers df.app applies where runtime.ts takes them', () => {
    const testingUtils = internal('util/testingUtils') as { createOrchestrator?: unknown };
    const app = internal('app') as { wrapActivityHandler?: unknown };
    expect(typeof testingUtils.createOrchestrator).toBe('function');
    expect(typeof app.wrapActivityHandler).toBe('function');
  });

  it('an activity wrapped as df.app wraps it passes results through and serialises failures', async () => {
    const app = internal('app') as {
      wrapActivityHandler(
        h: (input: unknown) => Promise<unknown>,
      ): (input: unknown, ctx: unknown) => Promise<unknown>;
    };
    const ok = app.wrapActivityHandler(async (input) => ({ echoed: input }));
    await expect(ok({ a: 1 }, {})).resolves.toStrictEqual({ echoed: { a: 1 } });
    const failing = app.wrapActivityHandler(async () => {
      throw new TypeError('boom');
    });
    await expect(failing(null, {})).rejects.toThrow(/boom/);
  });

  it('requiring the built entry registers every function and loads none of the pipeline', () => {
    const entry = path.join(REPO_ROOT, 'dist', 'functions', 'index.js');
    const script = [
      `require(${JSON.stringify(entry)});`,
      'const loaded = Object.keys(require.cache);',
      'process.stdout.write(JSON.stringify(loaded));',
    ].join('');
    const output = execFileSync(process.execPath, ['-e', script], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const loaded = (JSON.parse(output) as string[]).map((file) => path.relative(REPO_ROOT, file));
    const heavy = loaded.filter((file) =>
      /node_modules\/(zod|axios|@azure\/(storage-blob|data-tables|identity|arm-[a-z]+|monitor-[a-z-]+))\/|node_modules\/durable-functions\/lib\/src\/index\.js|dist\/functions\/runtime\.js|dist\/shared\/(pipeline\/(?!durableNames)|registry|carbon|storage)/.test(
        file,
      ),
    );
    expect(heavy).toStrictEqual([]);
    expect(loaded).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/node_modules\/durable-functions\/lib\/src\/trigger\.js$/),
        expect.stringMatching(/dist\/functions\/index\.js$/),
      ]),
    );
  });
});
