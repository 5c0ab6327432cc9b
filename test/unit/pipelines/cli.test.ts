import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../../shared/cli/main';
import { generateWeek, serializeCsv } from '../../../shared/invoices/generator';
import type { ModelMetadata } from '../../../shared/model/metadata';
import { deserializeDeclaredModel } from '../../../shared/pipelines/declaredModel';
import {
  encodingVersion,
  LEGACY_DECLARATION,
  type EncodingDeclaration,
} from '../../../shared/pipelines/featureEncoding';
import { VAT_RATE_FEATURES } from '../../../shared/pipelines/manifest';

const SAMPLE = path.join(__dirname, '../../../pipelines.sample.json');

async function run(
  env: Record<string, string | undefined>,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
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
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'green-ml-pipelines-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('green-ml pipelines', () => {
  it('lists the sample file as JSON with each pipeline’s encoding version', async () => {
    const listed = await run({ PIPELINES_FILE: SAMPLE, FOREST_TREES: '30' }, 'pipelines', 'list', '--json');
    expect(listed.code).toBe(0);
    const printed = JSON.parse(listed.stdout) as {
      source: string;
      path: string;
      pipelines: { name: string; label: string; encodingVersion: string; forest: { trees: number } }[];
    };
    expect(printed.source).toBe('file');
    expect(printed.path).toBe(SAMPLE);
    expect(printed.pipelines.map((p) => [p.name, p.label, p.forest.trees])).toEqual([
      ['vat-rate', 'vatRatePercent', 30],
      ['account-code', 'accountCode', 40],
    ]);
    expect(printed.pipelines[0].encodingVersion).toBe(encodingVersion(LEGACY_DECLARATION));
    expect(printed.pipelines[1].encodingVersion).not.toBe(printed.pipelines[0].encodingVersion);
  });

  it('lists as a table, and without a file shows the single MODEL_NAME pipeline', async () => {
    const table = await run({}, 'pipelines', 'list', '--file', SAMPLE);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`2 pipeline(s) from ${SAMPLE}`);
    expect(lines[1]).toMatch(/^name\s+label\s+features\s+trees/);
    expect(lines[3]).toMatch(
      /^vat-rate\s+vatRatePercent\s+supplierId:high-cardinality .* issuedAt:month\+dayOfWeek\s+50\s+0\.02\/0\.08\s+24\/1\s+8\s+EEA: westeurope,/,
    );
    expect(lines[4]).toMatch(/^account-code\s+accountCode\s.*\s40\s+0\.03\/0\.1\s+48\/1\s+6\s.*\s300$/);

    const single = await run(
      { PIPELINES_FILE: undefined, MODEL_NAME: 'invoices-vat' },
      'pipelines',
      'list',
      '--json',
    );
    const printed = JSON.parse(single.stdout) as {
      source: string;
      pipelines: { name: string; features: unknown }[];
    };
    expect(printed.source).toBe('settings');
    expect(printed.pipelines.map((p) => p.name)).toEqual(['invoices-vat']);
    expect(printed.pipelines[0].features).toEqual(VAT_RATE_FEATURES);
  });

  it('validate accepts the sample and rejects a bad file with one error naming every bad entry (exit 2)', async () => {
    const ok = await run({}, 'pipelines', 'validate', SAMPLE);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(
      /^valid: 2 pipeline\(s\) from .*\n {2}vat-rate: label vatRatePercent, encoding declared-features\/1:/,
    );

    const bad = path.join(dir, 'bad.json');
    await writeFile(
      bad,
      JSON.stringify({
        pipelines: [
          {
            name: 'vat-rate',
            label: 'vatRatePercent',
            features: [{ column: 'vatRatePercent', kind: 'numeric' }],
          },
          { name: 'vat-rate', label: 'accountCode', features: [{ column: 'payee', kind: 'categorical' }] },
          {
            name: 'receiver',
            label: 'receiverId',
            features: [{ column: 'supplierId', kind: 'categorical' }],
            retrain: { smallDrop: 0.2, bigDrop: 0.1, nowDeadlineHours: 0 },
          },
        ],
      }),
    );
    const rejected = await run({}, 'pipelines', 'validate', bad);
    expect(rejected.code).toBe(2);
    expect(rejected.stdout).toBe('');
    expect(rejected.stderr.split('\n').filter(Boolean)).toEqual([
      `error [CONFIG_INVALID]: Invalid pipelines file ${bad} (5): ` +
        'pipeline "vat-rate" features[0]: "vatRatePercent" is the label and cannot also be a feature; ' +
        'pipeline "vat-rate": duplicate name (also pipelines[0]); ' +
        'pipeline "vat-rate" features[0]: unknown column "payee" (known columns: invoiceId, issuedAt, supplierId, supplierCountry, receiverId, accountCode, currency, amountNet, lineCount, reverseCharge, vatRatePercent); ' +
        'pipeline "receiver" retrain: smallDrop (0.2) must be below bigDrop (0.1), or no drop would ever wait for a green window; ' +
        'pipeline "receiver" retrain.nowDeadlineHours: must be more than 0 hours, got 0',
    ]);
  });

  it('train --model trains any declared pipeline with its own name, forest, label and features', async () => {
    const data = path.join(dir, 'week.csv');
    await writeFile(
      data,
      serializeCsv(generateWeek({ scenario: 'stable', weeks: 1, rowsPerWeek: 800, seed: 5 }, 0)),
    );
    const file = path.join(dir, 'pipelines.json');
    const sample = JSON.parse(await readFile(SAMPLE, 'utf8')) as { pipelines: Record<string, unknown>[] };
    sample.pipelines[0] = { ...sample.pipelines[0], name: 'vat-small', forest: { trees: 3, maxDepth: 8 } };
    await writeFile(file, JSON.stringify(sample));
    const out = path.join(dir, 'model.json');

    const trained = await run(
      { PIPELINES_FILE: file },
      'train',
      '--model',
      'vat-small',
      '--data',
      data,
      '--out',
      out,
      '--threads',
      '1',
    );
    expect(trained.code).toBe(0);
    const metadata = (
      JSON.parse(trained.stdout) as {
        metadata: { modelName: string; hyperparameters: Record<string, unknown> };
      }
    ).metadata;
    expect(metadata.modelName).toBe('vat-small');
    expect(metadata.hyperparameters).toMatchObject({ trees: 3, maxDepth: 8 });

    const accountOut = path.join(dir, 'account.json');
    const account = await run(
      { PIPELINES_FILE: file },
      'train',
      '--model',
      'account-code',
      '--trees',
      '4',
      '--data',
      data,
      '--out',
      accountOut,
      '--threads',
      '1',
      '--version-id',
      'a1',
    );
    expect(account.code).toBe(0);
    const printed = JSON.parse(account.stdout) as { metadata: ModelMetadata; holdout: { accuracy: number } };
    expect(printed.metadata).toMatchObject({
      modelName: 'account-code',
      versionId: 'a1',
      dataWindow: [data],
    });
    expect(printed.metadata.hyperparameters).toMatchObject({ trees: 4, label: 'accountCode' });
    expect(printed.holdout.accuracy).toBeGreaterThan(0.6);
    const stored = deserializeDeclaredModel(await readFile(accountOut, 'utf8'));
    // The file holds what the inputs determine; the measured CPU is printed (and goes to the version record).
    expect(stored.metadata).toEqual({ ...printed.metadata, trainingCpuSeconds: null });
    expect(stored.metadata.featureSchemaVersion).toBe(
      encodingVersion(sample.pipelines[1] as unknown as EncodingDeclaration),
    );

    const evaluated = await run({}, 'evaluate', '--model', accountOut, '--data', data);
    expect(evaluated.code).toBe(0);
    const report = JSON.parse(evaluated.stdout) as {
      model: { modelName: string; label: string; featureSchemaVersion: string };
      batches: { file: string; rowsAccepted: number; rowsScored: number; accuracy: number }[];
    };
    expect(report.model).toMatchObject({
      modelName: 'account-code',
      label: 'accountCode',
      featureSchemaVersion: stored.metadata.featureSchemaVersion,
    });
    expect(report.batches).toEqual([
      expect.objectContaining({ file: data, rowsAccepted: 800, rowsScored: 800 }),
    ]);
    expect(report.batches[0].accuracy).toBeGreaterThan(printed.holdout.accuracy - 0.1);

    const warm = await run(
      { PIPELINES_FILE: file },
      'train',
      '--model',
      'account-code',
      '--warm-start',
      out,
      '--data',
      data,
      '--out',
      accountOut,
    );
    expect(warm.code).toBe(2);
    expect(warm.stderr).toContain('Warm start is not available for the declared pipeline account-code');
    const both = await run(
      { PIPELINES_FILE: file },
      'train',
      '--model',
      'vat-small',
      '--model-name',
      'x',
      '--data',
      data,
      '--out',
      out,
    );
    expect(both.stderr).toContain('Pass --model or --model-name, not both');
    const unknown = await run(
      { PIPELINES_FILE: file },
      'train',
      '--model',
      'receiver',
      '--data',
      data,
      '--out',
      out,
    );
    expect(unknown.stderr).toContain('No pipeline named "receiver" (declared: vat-small, account-code)');
  });
});
