import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { loadSettings, type Settings } from '../../../shared/config';
import { generateWeek } from '../../../shared/invoices/generator';
import type { InvoiceRow } from '../../../shared/invoices/schema';
import { evaluatedRecords } from '../../../shared/pipeline/batchEvaluation';
import { RecordingTelemetry } from '../../../shared/telemetry/telemetry';
import { deliverBatch, promoteTrainedChampion } from '../../support/batchDelivery';
import { uniqueName } from '../../support/storage';

/**
 * The evidence a small drop needs, through the real batch path on Azurite: with TRAINING_MODE=full
 * a drop that sampling noise could explain does not buy a refit; with adaptive, where that retrain
 * is a cheap warm start, its point estimate asks for it. Same champion, same batch, only the mode
 * differs.
 */
jest.setTimeout(300_000);

const T0 = Date.parse('2024-09-02T06:00:00Z');
const week = (index: number, rows: number): InvoiceRow[] => [
  ...generateWeek(
    { scenario: 'stable', weeks: 12, rowsPerWeek: rows, seed: 23, startDate: '2024-06-03' },
    index,
  ),
];

async function evaluateUnder(mode: Settings['TRAINING_MODE'], batch: InvoiceRow[]) {
  const model = uniqueName(`evidence-${mode}`);
  const clock = new VirtualClock(new Date(T0));
  const settings = loadSettings({
    DataStorage: process.env.AZURITE_TEST_CONNECTION_STRING as string,
    MODEL_NAME: model,
    TASKHUB_NAME: `hub${model}`.replace(/[^A-Za-z0-9]/g, '').slice(0, 40),
    TRAINING_MODE: mode,
  });
  const ctx = await composePipeline(settings, {
    now: clock.now,
    telemetry: new RecordingTelemetry(() => new Date(T0)),
    log: () => {},
  });
  const host = await LocalHost.create(ctx, clock);
  await promoteTrainedChampion(
    ctx,
    [0, 1, 2, 3].flatMap((w) => week(w, 1500)),
    {
      modelName: model,
      seed: 23,
    },
  );
  const outcome = await deliverBatch(
    ctx,
    host.client,
    // A name of its own: the invoices container is shared with the other suites on this Azurite.
    `${model}.csv`,
    batch,
    new Date(T0).toISOString(),
  );
  if (outcome.kind !== 'evaluated') throw new Error(`expected an evaluation, got ${outcome.kind}`);
  const [record] = evaluatedRecords(outcome);
  return record;
}

describe('small-drop evidence follows the training mode', () => {
  it('a noisy small drop: no refit under full, a warm start under adaptive', async () => {
    // Mislabel every 40th row with another known rate: a drop of about 3.4 % relative on 2,000
    // rows, beyond the 2 % small drop as a point estimate but not at 95 % against ~1,200 held-out rows.
    const batch = week(5, 2000).map((row, i) =>
      i % 40 === 0 ? { ...row, vatRatePercent: row.vatRatePercent === 19 ? 7 : 19 } : row,
    );
    const full = await evaluateUnder('full', batch);
    const adaptive = await evaluateUnder('adaptive', batch);

    // The premise: the same champion quality and the same measured drop in both deployments.
    expect(adaptive.accuracy).toBe(full.accuracy);
    const drop = full.decision.relativeDrop as number;
    expect(drop).toBeGreaterThanOrEqual(0.02);
    expect(full.decision.reason).toMatch(/95 % sure of/);
    expect(full.drift.unseenLabelShare).toBe(0);

    expect(full.decision.kind).toBe('none');
    expect(adaptive.decision.kind).toBe('retrainWhenGreen');
    expect(adaptive.decision.reason).toMatch(/a warm start answers it/);
  });
});
