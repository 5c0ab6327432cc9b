import { composePipeline } from '../../../functions/composition';
import { LocalHost } from '../../../functions/local/localHost';
import { VirtualClock } from '../../../functions/local/virtualClock';
import { loadSettings } from '../../../shared/config';
import { generateWeek } from '../../../shared/invoices/generator';
import type { InvoiceRow } from '../../../shared/invoices/schema';
import { evaluatedRecords } from '../../../shared/pipeline/batchEvaluation';
import type { PipelineContext } from '../../../shared/pipeline/context';
import { RecordingTelemetry } from '../../../shared/telemetry/telemetry';
import { deliverBatch, promoteTrainedChampion } from '../../support/batchDelivery';
import { uniqueName } from '../../support/storage';

/**
 * The new-label signal through the real batch path (Event Grid handler → stream, score, decide,
 * record) on Azurite: the product runs the same decideRetrain as the replay benchmark, with the
 * unseen-label share and the champion's held-out rows measured from the batch and the registry.
 */
jest.setTimeout(300_000);

const T0 = Date.parse('2024-09-02T06:00:00Z');
const MODEL = uniqueName('newlabel');
const week = (index: number, rows: number, seed: number): InvoiceRow[] => [
  ...generateWeek({ scenario: 'stable', weeks: 12, rowsPerWeek: rows, seed, startDate: '2024-06-03' }, index),
];

let ctx: PipelineContext;
let host: LocalHost;

beforeAll(async () => {
  const connectionString = process.env.AZURITE_TEST_CONNECTION_STRING as string;
  const clock = new VirtualClock(new Date(T0));
  const settings = loadSettings({
    DataStorage: connectionString,
    MODEL_NAME: MODEL,
    TASKHUB_NAME: `hub${MODEL}`.slice(0, 40),
  });
  ctx = await composePipeline(settings, {
    now: clock.now,
    telemetry: new RecordingTelemetry(() => new Date(T0)),
    log: () => {},
  });
  host = await LocalHost.create(ctx, clock);
  await promoteTrainedChampion(
    ctx,
    [0, 1, 2, 3].flatMap((w) => week(w, 1500, 11)),
    {
      modelName: MODEL,
      seed: 11,
    },
  );
});

function deliver(name: string, rows: InvoiceRow[]) {
  return deliverBatch(ctx, host.client, name, rows, new Date(T0).toISOString());
}

describe('new-label signal in batch evaluation', () => {
  it('records the unseen-label share and asks for a green retrain when a new class appears', async () => {
    const plain = week(5, 2000, 11);
    const control = await deliver('invoices-2024-07-08.csv', plain);
    expect(control.kind).toBe('evaluated');
    if (control.kind !== 'evaluated') return;
    const [controlRecord] = evaluatedRecords(control);
    expect(controlRecord.drift.unseenLabelShare).toBe(0);
    expect(controlRecord.decision.kind).toBe('none');

    // 1 % of the next batch carries a rate the champion never saw (a reform on its last day): the
    // accuracy barely moves, but those rows are certain errors and next week's rule.
    const next = week(6, 2000, 11);
    let relabelled = 0;
    const withNewRate = next.map((row, i) => {
      if (i % 100 !== 0) return row;
      relabelled++;
      return { ...row, vatRatePercent: 25.5 };
    });
    const outcome = await deliver('invoices-2024-07-15.csv', withNewRate);
    expect(outcome.kind).toBe('evaluated');
    if (outcome.kind !== 'evaluated') return;
    const [result] = outcome.pipelines;
    if (result.kind !== 'evaluated') throw new Error(`expected an evaluation, got ${result.kind}`);
    const { record } = result;
    expect(record.drift.unseenLabelShare).toBeCloseTo(relabelled / record.rowsAccepted, 12);
    expect(record.decision.kind).toBe('retrainWhenGreen');
    expect(record.decision.reason).toMatch(/label the champion never saw/);
    expect(['started', 'already-running', 'merged']).toContain(result.action);
    // The stored record (what the status endpoint and report read) keeps the signal.
    const stored = (await ctx.evaluations.list(MODEL)).find((r) => r.batchName === record.batchName);
    expect(stored?.drift.unseenLabelShare).toBe(record.drift.unseenLabelShare);
    expect((await ctx.pending.get(MODEL, 'current'))?.request.kind).toBe('retrainWhenGreen');
  });
});
