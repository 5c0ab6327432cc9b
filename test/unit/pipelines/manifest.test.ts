import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSettings } from '../../../shared/config';
import { ConfigError } from '../../../shared/errors';
import {
  defaultPipeline,
  findPipeline,
  loadPipelineManifest,
  resolvePipelineManifest,
  VAT_RATE_FEATURES,
} from '../../../shared/pipelines/manifest';

const settings = loadSettings({ DataStorage: 'UseDevelopmentStorage=true' });
const SAMPLE_PATH = path.join(__dirname, '../../../pipelines.sample.json');

function entry(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'vat-rate',
    label: 'vatRatePercent',
    features: [
      { column: 'supplierId', kind: 'high-cardinality' },
      { column: 'amountNet', kind: 'numeric' },
    ],
    ...overrides,
  };
}

function problemsOf(document: unknown): { key: string; reason: string }[] {
  try {
    resolvePipelineManifest(document, settings, 'pipelines.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  throw new Error('expected the manifest to be rejected');
}

describe('pipelines manifest', () => {
  it('the shipped sample declares vat-rate and account-code, and settings fill what a pipeline leaves out', () => {
    const manifest = loadPipelineManifest({ ...settings, PIPELINES_FILE: SAMPLE_PATH });
    expect(manifest.source).toBe('file');
    expect(manifest.pipelines.map((p) => [p.name, p.label])).toEqual([
      ['vat-rate', 'vatRatePercent'],
      ['account-code', 'accountCode'],
    ]);
    const [vat, account] = manifest.pipelines;
    expect(vat.features).toEqual(VAT_RATE_FEATURES);
    expect(vat.forest.trees).toBe(settings.FOREST_TREES);
    expect(vat.retrain.smallDrop).toBe(settings.RETRAIN_SMALL_DROP);
    expect(vat.regions).toEqual({ allowed: settings.ALLOWED_REGIONS, residency: settings.DATA_RESIDENCY });
    // account-code overrides some knobs and inherits the rest.
    expect(account.forest).toEqual({
      trees: 40,
      maxFeatures: settings.FOREST_MAX_FEATURES,
      minSamplesLeaf: settings.FOREST_MIN_SAMPLES_LEAF,
      maxDepth: settings.FOREST_MAX_DEPTH,
    });
    expect(account.retrain).toEqual({
      smallDrop: 0.03,
      bigDrop: 0.1,
      minRows: settings.RETRAIN_MIN_ROWS,
      greenDeadlineHours: 48,
      nowDeadlineHours: settings.RETRAIN_NOW_DEADLINE_HOURS,
    });
    expect(account.training.windowBatches).toBe(6);
    expect(account.serving.p99SloMs).toBe(300);
    expect(account.features.map((f) => f.column)).not.toContain('accountCode');
  });

  it('without a pipelines file there is one pipeline, MODEL_NAME, reading rows as the single model always did', () => {
    const manifest = loadPipelineManifest({ ...settings, MODEL_NAME: 'invoices-vat' });
    expect(manifest.source).toBe('settings');
    expect(manifest.pipelines).toEqual([defaultPipeline({ ...settings, MODEL_NAME: 'invoices-vat' })]);
    expect(manifest.pipelines[0]).toMatchObject({ name: 'invoices-vat', label: 'vatRatePercent' });
    expect(manifest.pipelines[0].forest.maxDepth).toBe(settings.FOREST_MAX_DEPTH);
  });

  it('rejects a column the invoices do not have, as a feature and as a label', () => {
    const problems = problemsOf({
      pipelines: [
        entry({ features: [{ column: 'supplierName', kind: 'categorical' }] }),
        entry({ name: 'receiver', label: 'receiverName' }),
      ],
    });
    expect(problems).toEqual([
      {
        key: 'pipeline "vat-rate" features[0]',
        reason: expect.stringMatching(
          /^unknown column "supplierName" \(known columns: invoiceId, .*vatRatePercent\)$/,
        ),
      },
      { key: 'pipeline "receiver" label', reason: expect.stringContaining('unknown column "receiverName"') },
    ]);
  });

  it('rejects a label that is also a feature', () => {
    const problems = problemsOf({
      pipelines: [
        entry({
          name: 'account-code',
          label: 'accountCode',
          features: [
            { column: 'supplierId', kind: 'categorical' },
            { column: 'accountCode', kind: 'high-cardinality' },
          ],
        }),
      ],
    });
    expect(problems).toEqual([
      {
        key: 'pipeline "account-code" features[1]',
        reason: '"accountCode" is the label and cannot also be a feature',
      },
    ]);
  });

  it('rejects duplicate pipeline names, naming both entries', () => {
    const problems = problemsOf({
      pipelines: [entry(), entry({ label: 'accountCode' }), entry({ name: 'other' })],
    });
    expect(problems).toEqual([{ key: 'pipeline "vat-rate"', reason: 'duplicate name (also pipelines[0])' }]);
  });

  it('rejects impossible thresholds and deadlines, including ones that only clash with the settings', () => {
    const problems = problemsOf({
      pipelines: [
        entry({ name: 'p-a', retrain: { smallDrop: 0.1, bigDrop: 0.05 } }),
        // bigDrop from the settings is 0.08: a smallDrop of 0.08 can never wait for a green window.
        entry({ name: 'p-b', retrain: { smallDrop: settings.RETRAIN_BIG_DROP } }),
        entry({ name: 'p-c', retrain: { greenDeadlineHours: 0, nowDeadlineHours: -1 } }),
        entry({ name: 'p-d', retrain: { greenDeadlineHours: 2, nowDeadlineHours: 6 } }),
      ],
    });
    expect(problems.map((p) => p.key)).toEqual([
      'pipeline "p-a" retrain',
      'pipeline "p-b" retrain',
      'pipeline "p-c" retrain.greenDeadlineHours',
      'pipeline "p-c" retrain.nowDeadlineHours',
      'pipeline "p-d" retrain',
    ]);
    expect(problems[0].reason).toMatch(/smallDrop \(0\.1\) must be below bigDrop \(0\.05\)/);
    expect(problems[2].reason).toBe('must be more than 0 hours, got 0');
    expect(problems[3].reason).toBe('must be more than 0 hours, got -1');
    expect(problems[4].reason).toMatch(/nowDeadlineHours \(6\) exceeds greenDeadlineHours \(2\)/);
  });

  it('rejects feature kinds that cannot read their column, and identifiers and dates as labels', () => {
    const problems = problemsOf({
      pipelines: [
        entry({
          features: [
            { column: 'invoiceId', kind: 'categorical' },
            { column: 'supplierId', kind: 'numeric' },
            { column: 'issuedAt', kind: 'date-parts', parts: ['month'] },
            { column: 'issuedAt', kind: 'date-parts', parts: ['dayOfWeek'] },
          ],
        }),
        entry({ name: 'by-id', label: 'invoiceId' }),
      ],
    });
    expect(problems).toEqual([
      {
        key: 'pipeline "vat-rate" features[0]',
        reason: '"invoiceId" identifies a row; a model would only memorise it',
      },
      {
        key: 'pipeline "vat-rate" features[1]',
        reason: 'a numeric feature cannot read the text column "supplierId" (needs number)',
      },
      { key: 'pipeline "vat-rate" features[3]', reason: '"issuedAt" is declared twice' },
      { key: 'pipeline "by-id" label', reason: '"invoiceId" is an identifier column, not a class' },
    ]);
  });

  it('rejects regions outside the residency and unknown regions', () => {
    const problems = problemsOf({
      pipelines: [
        entry({ regions: { allowed: ['westeurope', 'eastus'], residency: 'EU' } }),
        entry({ name: 'p-b', regions: { allowed: ['marsnorth'] } }),
        // The settings' regions include norwayeast, which is EEA but not EU.
        entry({ name: 'p-c', regions: { residency: 'EU' } }),
      ],
    });
    expect(problems).toEqual([
      { key: 'pipeline "vat-rate" regions.allowed', reason: 'eastus outside residency EU' },
      { key: 'pipeline "p-b" regions.allowed', reason: 'unknown Azure region marsnorth' },
      { key: 'pipeline "p-c" regions.allowed', reason: 'norwayeast outside residency EU' },
    ]);
  });

  it('collects shape errors of every entry into the one error, keyed by entry', () => {
    let caught: unknown;
    try {
      resolvePipelineManifest(
        {
          pipelines: [
            entry({ name: 'Bad Name' }),
            entry({ name: 'ok', features: [{ column: 'amountNet', kind: 'log-scaled' }] }),
            entry({ name: 'extra', forest: { trees: 10, depth: 3 } }),
            { label: 'vatRatePercent' },
            entry({ name: 'fine-but-bad-label', label: 'nope' }),
          ],
        },
        settings,
        'pipelines.json',
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    const keys = error.problems.map((p) => p.key);
    expect(keys).toEqual([
      'pipeline "Bad Name" name',
      'pipeline "ok" features.0.kind',
      'pipeline "extra" forest',
      'pipelines[3] name',
      'pipelines[3] features',
      'pipeline "fine-but-bad-label" label',
    ]);
    expect(error.message).toMatch(
      /^Invalid pipelines file pipelines\.json \(6\): pipeline "Bad Name" name: /,
    );
    expect(error.problems[2].reason).toMatch(/depth/);
  });

  it('stops on a file that is missing, not JSON, or has no pipelines', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pipelines-'));
    const missing = path.join(dir, 'missing.json');
    expect(() => loadPipelineManifest({ ...settings, PIPELINES_FILE: missing })).toThrow(
      new RegExp(`Cannot read pipelines file ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
    );
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{"pipelines": [');
    expect(() => loadPipelineManifest({ ...settings, PIPELINES_FILE: broken })).toThrow(/\(file\): not JSON/);
    writeFileSync(broken, '{"pipelines": []}');
    expect(() => loadPipelineManifest({ ...settings, PIPELINES_FILE: broken })).toThrow(
      /pipelines: declare at least one pipeline/,
    );
  });

  it('findPipeline names the declared pipelines when asked for another', () => {
    const manifest = loadPipelineManifest({ ...settings, PIPELINES_FILE: SAMPLE_PATH });
    expect(findPipeline(manifest, 'account-code').label).toBe('accountCode');
    expect(() => findPipeline(manifest, 'receiver')).toThrow(
      'No pipeline named "receiver" (declared: vat-rate, account-code)',
    );
  });
});
