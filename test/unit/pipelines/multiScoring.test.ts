import { loadSettings } from '../../../shared/config';
import { generateWeek, type GeneratorOptions } from '../../../shared/invoices/generator';
import type { ParsedRecord } from '../../../shared/invoices/parser';
import { INVOICE_COLUMNS, type InvoiceRow } from '../../../shared/invoices/schema';
import { evaluateRows } from '../../../shared/model/evaluation';
import { trainForest } from '../../../shared/model/randomForest';
import { trainFromRows } from '../../../shared/model/training';
import { DeclaredColumns, DeclaredFeatureEncoder } from '../../../shared/pipelines/featureEncoding';
import { loadPipelineManifest, type PipelineDefinition } from '../../../shared/pipelines/manifest';
import {
  legacyPredictor,
  scoreBatchForPipelines,
  type DeclaredPredictor,
  type PipelineOutcome,
} from '../../../shared/pipelines/multiScoring';

const manifest = loadPipelineManifest({
  ...loadSettings({ DataStorage: 'UseDevelopmentStorage=true' }),
  PIPELINES_FILE: `${__dirname}/../../../pipelines.sample.json`,
});
const [VAT, ACCOUNT] = manifest.pipelines as [PipelineDefinition, PipelineDefinition];

// The default demo scenario: Finland's VAT reform lands in week 9 (2024-09-02).
const OPTIONS: GeneratorOptions = { scenario: 'vat-reform', weeks: 12, rowsPerWeek: 2000, seed: 21 };
const week = (index: number): InvoiceRow[] => [...generateWeek(OPTIONS, index)];
const TRAIN = [...week(0), ...week(1)];

async function declaredChampion(
  pipeline: PipelineDefinition,
  rows: readonly InvoiceRow[],
  trees = 8,
): Promise<DeclaredPredictor> {
  const columns = new DeclaredColumns(pipeline);
  for (const row of rows) columns.push(row, true);
  const { encoder, matrix, labels } = DeclaredFeatureEncoder.fit(columns);
  const forest = await trainForest(
    { ...matrix, binCounts: encoder.binCounts, labels, classCount: encoder.classes.length },
    [...encoder.classes],
    { trees, maxFeatures: 'sqrt', minSamplesLeaf: 1, maxDepth: 24, seed: 5, threads: 1 },
  );
  return { encoder, forest };
}

function accepted(rows: Iterable<InvoiceRow>): ParsedRecord[] {
  return Array.from(rows, (row, i) => ({ kind: 'accepted' as const, rowNumber: i + 1, row }));
}

function scored(outcome: PipelineOutcome): Extract<PipelineOutcome, { kind: 'scored' }>['score'] {
  if (outcome.kind !== 'scored') throw new Error(`${outcome.pipeline} was not scored: ${outcome.kind}`);
  return outcome.score;
}

let vatModel: Awaited<ReturnType<typeof trainFromRows>>['model'];
let accountChampion: DeclaredPredictor;
beforeAll(async () => {
  vatModel = (
    await trainFromRows(TRAIN, {
      trees: 8,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 1,
      maxDepth: 24,
      seed: 5,
      modelName: 'vat-rate',
      threads: 1,
    })
  ).model;
  accountChampion = await declaredChampion(ACCOUNT, TRAIN);
});

describe('one upload, every model', () => {
  it('scores one parse with both pipelines; vat-rate gets exactly what the single-model evaluator gets', async () => {
    const rows = week(3);
    const records = accepted(rows);
    records.splice(10, 0, { kind: 'rejected', rowNumber: 11, reason: 'bad', issues: [] });
    const result = await scoreBatchForPipelines(records, [
      { pipeline: VAT, champion: legacyPredictor(vatModel) },
      { pipeline: ACCOUNT, champion: accountChampion },
    ]);
    expect(result).toMatchObject({ rowsAccepted: rows.length, rowsRejected: 1 });
    const [vat, account] = result.outcomes.map(scored);
    const alone = evaluateRows(vatModel, rows);
    expect(vat.accuracy).toBe(alone.accuracy);
    expect(vat.macroF1).toBe(alone.macroF1);
    expect(vat.confusion).toEqual(alone.confusion);
    expect(vat.unseenShare).toEqual(alone.featureMix.unseenShare);
    expect(vat.rowsScored).toBe(rows.length);
    expect(account.rowsScored).toBe(rows.length);
    expect(account.accuracy).toBeGreaterThan(0.8);
    expect(account.encodingVersion).toBe(accountChampion.encoder.version);

    // Scoring account-code alone gives the same figures: pipelines do not disturb each other.
    const single = await scoreBatchForPipelines(accepted(rows), [
      { pipeline: ACCOUNT, champion: accountChampion },
    ]);
    expect(scored(single.outcomes[0])).toEqual(account);
  });

  it('the VAT reform moves vat-rate and leaves account-code alone, so only one of them would retrain', async () => {
    const before = await scoreBatchForPipelines(accepted(week(2)), [
      { pipeline: VAT, champion: legacyPredictor(vatModel) },
      { pipeline: ACCOUNT, champion: accountChampion },
    ]);
    const after = await scoreBatchForPipelines(accepted(week(9)), [
      { pipeline: VAT, champion: legacyPredictor(vatModel) },
      { pipeline: ACCOUNT, champion: accountChampion },
    ]);
    const [vatBefore, accountBefore] = before.outcomes.map(scored);
    const [vatAfter, accountAfter] = after.outcomes.map(scored);
    const relativeDrop = (a: number, b: number): number => (a - b) / a;
    expect(relativeDrop(vatBefore.accuracy, vatAfter.accuracy)).toBeGreaterThan(VAT.retrain.bigDrop);
    expect(relativeDrop(accountBefore.accuracy, accountAfter.accuracy)).toBeLessThan(
      ACCOUNT.retrain.smallDrop,
    );
  });

  it('skips a pipeline whose label or features the batch lacks, with the reason, and reports a missing champion', async () => {
    const withoutAccount = INVOICE_COLUMNS.filter((c) => c !== 'accountCode');
    const result = await scoreBatchForPipelines(
      accepted(week(3).slice(0, 300)),
      [
        { pipeline: VAT, champion: legacyPredictor(vatModel) },
        { pipeline: ACCOUNT, champion: accountChampion },
        { pipeline: { ...ACCOUNT, name: 'account-next' }, champion: null },
      ],
      { batchColumns: withoutAccount },
    );
    expect(result.outcomes).toEqual([
      { kind: 'skipped', pipeline: 'vat-rate', reason: 'batch lacks feature column(s) accountCode' },
      { kind: 'skipped', pipeline: 'account-code', reason: 'batch has no accountCode column (the label)' },
      { kind: 'skipped', pipeline: 'account-next', reason: 'batch has no accountCode column (the label)' },
    ]);
    const full = await scoreBatchForPipelines(accepted(week(3).slice(0, 300)), [
      { pipeline: { ...ACCOUNT, name: 'account-next' }, champion: null },
    ]);
    expect(full.outcomes).toEqual([{ kind: 'no-champion', pipeline: 'account-next' }]);
  });

  it('a champion keeps its own encoding after the declaration changed', async () => {
    const edited: PipelineDefinition = {
      ...ACCOUNT,
      features: ACCOUNT.features.filter((f) => f.column !== 'receiverId'),
    };
    const result = await scoreBatchForPipelines(accepted(week(3)), [
      { pipeline: edited, champion: accountChampion },
      { pipeline: ACCOUNT, champion: accountChampion },
    ]);
    expect(scored(result.outcomes[0])).toEqual(scored(result.outcomes[1]));
  });

  it('20 pipelines on one 50k-row upload hold one chunk of rows, not the batch once per model', async () => {
    const big: GeneratorOptions = { scenario: 'stable', weeks: 1, rowsPerWeek: 50_000, seed: 3 };
    const small = await declaredChampion(ACCOUNT, TRAIN, 2);
    const vat = legacyPredictor(vatModel);
    const entries = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? { pipeline: { ...VAT, name: `vat-${i}` }, champion: vat }
        : { pipeline: { ...ACCOUNT, name: `account-${i}` }, champion: small },
    );
    const records = (function* (): Generator<ParsedRecord> {
      let rowNumber = 0;
      for (const row of generateWeek(big, 0)) yield { kind: 'accepted', rowNumber: ++rowNumber, row };
    })();
    const result = await scoreBatchForPipelines(records, entries, { chunkRows: 2048 });
    expect(result.rowsAccepted).toBe(50_000);
    expect(result.outcomes.map((o) => o.kind === 'scored' && o.score.rowsScored)).toEqual(
      new Array(20).fill(50_000),
    );
    expect(result.peakRowsHeld).toBe(2048);
  }, 120_000);
});
