import { main } from '../../../shared/cli/main';
import { ModelRegistry } from '../../../shared/registry';
import { testStorage, uniqueName } from '../../support/storage';
import { metadataFor } from './fixtures';

/** Runs `green-ml registry ...` in-process (DataStorage points at the test Azurite) and captures output. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    const code = await main(['node', 'green-ml', 'registry', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('green-ml registry', () => {
  // The CLI uses the real `models` container; a unique model name keeps this test to itself.
  const model = uniqueName('cli-');
  const registry = new ModelRegistry(testStorage().blobs);

  beforeAll(async () => {
    await registry.ensureContainer();
    await registry.putVersion(metadataFor(model, 'v1', { hour: 1 }), '{}');
    await registry.putVersion(
      metadataFor(model, 'v2', { hour: 2, holdoutMetrics: { accuracy: 0.9345, macroF1: 0.9 } }),
      '{}',
    );
  });

  it('lists, promotes, shows, rolls back and prints history', async () => {
    const empty = await cli('history', '--model', model);
    expect(empty).toMatchObject({ code: 0, stdout: `No promotions of ${model} yet.\n` });

    expect((await cli('promote', 'v1', '--reason', 'first', '--model', model)).code).toBe(0);
    const promoted = await cli(
      'promote',
      'v2',
      '--reason',
      'better',
      '--model',
      model,
      '--expect',
      'v1',
      '--json',
    );
    expect(JSON.parse(promoted.stdout)).toMatchObject({
      versionId: 'v2',
      previousVersionId: 'v1',
      sequence: 2,
    });

    const listed = await cli('list', '--model', model);
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s+version\s+trained at\s+accuracy/);
    expect(lines[2]).toMatch(/^\*\s+v2\s+2024-01-01T02:00:00.000Z\s+93\.45 %/);
    expect(lines[3]).toMatch(/^\s+v1\s/);
    const listedJson = JSON.parse((await cli('list', '--model', model, '--json')).stdout) as {
      versionId: string;
      champion: boolean;
    }[];
    expect(listedJson.map((v) => [v.versionId, v.champion])).toEqual([
      ['v2', true],
      ['v1', false],
    ]);

    expect((await cli('show', 'v2', '--model', model)).stdout).toMatch(/champion\s+yes/);

    const rolled = await cli('rollback', '--reason', 'v2 misbehaves', '--model', model);
    expect(rolled.code).toBe(0);
    expect(rolled.stdout).toMatch(new RegExp(`${model}\\s+v1\\s+3\\s+rollback\\s+v2`));

    const history = await cli('history', '--model', model, '--json');
    expect(JSON.parse(history.stdout)).toMatchObject([
      { sequence: 1, action: 'promote', versionId: 'v1', fromVersionId: null, reason: 'first' },
      { sequence: 2, action: 'promote', versionId: 'v2', fromVersionId: 'v1', reason: 'better' },
      { sequence: 3, action: 'rollback', versionId: 'v1', fromVersionId: 'v2', reason: 'v2 misbehaves' },
    ]);
  });

  it('reports conflicts, unknown versions and bad names as typed errors with exit code 2', async () => {
    const stale = await cli('promote', 'v2', '--reason', 'x', '--model', model, '--expect', 'none');
    expect(stale.code).toBe(2);
    expect(stale.stderr).toMatch(/^error \[CONFLICT\]: The champion of .* is v1, not none/);
    expect((await cli('show', 'v9', '--model', model)).stderr).toMatch(/^error \[NOT_FOUND\]/);
    expect((await cli('show', '../v1', '--model', model)).stderr).toMatch(/^error \[VALIDATION_FAILED\]/);
    const noReason = await cli('rollback', '--model', model);
    expect(noReason.code).not.toBe(0);
    expect(noReason.stderr).toMatch(/--reason/);
  });
});
