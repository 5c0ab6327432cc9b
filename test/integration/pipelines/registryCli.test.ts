import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../../shared/cli/main';
import { ModelRegistry } from '../../../shared/registry';
import { VAT_RATE_FEATURES } from '../../../shared/pipelines/manifest';
import { testStorage, uniqueName } from '../../support/storage';
import { metadataFor } from '../registry/fixtures';

/** `green-ml registry ...` in-process against the test Azurite, with PIPELINES_FILE set for the call. */
async function cli(
  pipelinesFile: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = process.env.PIPELINES_FILE;
  process.env.PIPELINES_FILE = pipelinesFile;
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
    if (saved === undefined) delete process.env.PIPELINES_FILE;
    else process.env.PIPELINES_FILE = saved;
  }
}

describe('green-ml registry --model with declared pipelines', () => {
  const vat = uniqueName('vat-');
  const account = uniqueName('acct-');
  const registry = new ModelRegistry(testStorage().blobs);
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'green-ml-registry-pipelines-'));
    file = path.join(dir, 'pipelines.json');
    await writeFile(
      file,
      JSON.stringify({
        pipelines: [
          { name: vat, label: 'vatRatePercent', features: VAT_RATE_FEATURES },
          {
            name: account,
            label: 'accountCode',
            features: VAT_RATE_FEATURES.filter((f) => f.column !== 'accountCode'),
          },
        ],
      }),
    );
    await registry.ensureContainer();
    await registry.putVersion(metadataFor(vat, 'v1', { hour: 1 }), '{}');
    await registry.putVersion(metadataFor(account, 'a1', { hour: 2 }), '{}');
    await registry.putVersion(metadataFor(account, 'a2', { hour: 3 }), '{}');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('each model has its own registry folder: --model picks which one a command acts on', async () => {
    const accounts = JSON.parse((await cli(file, 'list', '--model', account, '--json')).stdout) as {
      versionId: string;
    }[];
    expect(accounts.map((v) => v.versionId)).toEqual(['a2', 'a1']);
    const vats = JSON.parse((await cli(file, 'list', '--model', vat, '--json')).stdout) as {
      versionId: string;
    }[];
    expect(vats.map((v) => v.versionId)).toEqual(['v1']);

    expect((await cli(file, 'promote', 'a1', '--model', account, '--reason', 'first')).code).toBe(0);
    expect((await registry.getChampion(account))?.pointer.versionId).toBe('a1');
    expect(await registry.getChampion(vat)).toBeNull();
  });

  it('refuses an undeclared model, and asks for --model when MODEL_NAME is not declared', async () => {
    const undeclared = await cli(file, 'list', '--model', 'receiver');
    expect(undeclared.code).toBe(2);
    expect(undeclared.stderr).toBe(
      `error [CONFIG_INVALID]: No pipeline named "receiver" (declared: ${vat}, ${account})\n`,
    );

    const ambiguous = await cli(file, 'history');
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain(
      `Several pipelines are declared (${vat}, ${account}) and MODEL_NAME=vat-rate is not one: pass --model`,
    );
  });
});
