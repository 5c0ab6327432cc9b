import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../../shared/cli/main';
import { deserializeModel } from '../../../shared/model/artifact';
import { syntheticRows, toCsv } from './syntheticInvoices';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'green-ml-cli-'));
  await writeFile(path.join(dir, 'w1.csv'), toCsv(syntheticRows({ rows: 1500, seed: 1 })));
  await writeFile(path.join(dir, 'w2.csv'), `${toCsv(syntheticRows({ rows: 400, seed: 2 }))}bad,row\n`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(['node', 'green-ml', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('green-ml train / evaluate', () => {
  it('trains to a file and evaluates batches with it', async () => {
    const model = path.join(dir, 'model.json');
    const trained = await run(
      'train',
      '--data',
      path.join(dir, 'w1.csv'),
      '--out',
      model,
      '--trees',
      '6',
      '--seed',
      '3',
      '--threads',
      '1',
    );
    expect(trained.code).toBe(0);
    const printed = JSON.parse(trained.stdout) as {
      metadata: { versionId: string; hyperparameters: { trees: number } };
      holdout: { accuracy: number };
    };
    expect(printed.metadata.hyperparameters.trees).toBe(6);
    expect(printed.holdout.accuracy).toBeGreaterThan(0.9);
    // The measured CPU is printed but kept out of the artifact, so equal trainings give equal bytes.
    expect(deserializeModel(await readFile(model, 'utf8')).metadata).toEqual({
      ...printed.metadata,
      trainingCpuSeconds: null,
    });

    const evaluated = await run(
      'evaluate',
      '--model',
      model,
      '--data',
      path.join(dir, 'w2.csv'),
      path.join(dir, 'w1.csv'),
    );
    expect(evaluated.code).toBe(0);
    const report = JSON.parse(evaluated.stdout) as {
      model: { versionId: string };
      batches: {
        file: string;
        rowsAccepted: number;
        rowsRejected: number;
        accuracy: number;
        confusion: { classes: string[] };
      }[];
    };
    expect(report.model.versionId).toBe(printed.metadata.versionId);
    expect(report.batches.map((b) => [path.basename(b.file), b.rowsAccepted, b.rowsRejected])).toEqual([
      ['w2.csv', 400, 1],
      ['w1.csv', 1500, 0],
    ]);
    expect(report.batches[0].accuracy).toBeGreaterThan(0.9);
    expect(report.batches[0].confusion.classes).toEqual(['0', '5.5', '9', '14', '24']);
  });

  it('fails with typed errors on a missing model, a corrupt model and bad options', async () => {
    const missing = await run(
      'evaluate',
      '--model',
      path.join(dir, 'none.json'),
      '--data',
      path.join(dir, 'w1.csv'),
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/NOT_FOUND.*none\.json/);
    await writeFile(path.join(dir, 'corrupt.json'), '{"format":"green-ml/random-forest"');
    const corrupt = await run(
      'evaluate',
      '--model',
      path.join(dir, 'corrupt.json'),
      '--data',
      path.join(dir, 'w1.csv'),
    );
    expect(corrupt.stderr).toMatch(/MODEL_INVALID/);
    const bad = await run(
      'train',
      '--data',
      path.join(dir, 'w1.csv'),
      '--out',
      path.join(dir, 'x.json'),
      '--max-features',
      'half',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/VALIDATION_FAILED.*maxFeatures/);
  });
});
