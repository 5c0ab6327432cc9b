import { generateWeek, type ScenarioName } from '../../shared/invoices/generator';
import type { InvoiceRow } from '../../shared/invoices/schema';
import { evaluateRows } from '../../shared/model/evaluation';
import { unseenLabelShare } from '../../shared/policy/newLabels';
import { isHoldoutRow, trainFromRows } from '../../shared/model/training';
import type { TrainedModel } from '../../shared/model/trainedModel';

/**
 * The REAL models of one scenario, trained once per data window and shared by every policy and zone:
 * a model depends on which batches it trained on, not on when or where the job ran, so a policy's
 * accuracy follows from which window is serving when each batch arrives.
 */
export interface ModelSettings {
  readonly rowsPerWeek: number;
  readonly trees: number;
  readonly seed: number;
}

/**
 * Weeks [firstWeek, lastWeek] of one scenario, inclusive. With `warmFrom`, a warm start: new trees
 * grown on these weeks beside the newest trees of the model of `warmFrom` (the product's
 * TRAINING_MODE=warm-start), so the model depends on its whole lineage.
 */
export interface DataWindow {
  readonly firstWeek: number;
  readonly lastWeek: number;
  readonly warmFrom?: DataWindow;
}

export interface BatchScore {
  readonly accuracy: number;
  readonly rowsAccepted: number;
  /** Rows of the scored batch that the serving model trained on (must be 0: new batches are unseen). */
  readonly rowsSeenInTraining: number;
  /** Share of the batch's rows whose label is a class the model never saw (it cannot predict them). */
  readonly unseenLabelShare: number;
  /** Process CPU the evaluation took here (parse excluded: rows are in memory). */
  readonly cpuSeconds: number;
}

interface WindowModel {
  readonly model: TrainedModel;
  readonly holdoutAccuracy: number;
  readonly holdoutRows: number;
  readonly trainingIds: ReadonlySet<string>;
  readonly scores: Map<number, BatchScore>;
}

export const windowKey = (w: DataWindow): string =>
  `${w.warmFrom ? `${windowKey(w.warmFrom)}>` : ''}${w.firstWeek}-${w.lastWeek}`;

export class ModelBank {
  private readonly weeks = new Map<number, InvoiceRow[]>();
  private readonly models = new Map<string, Promise<WindowModel>>();
  trainings = 0;

  constructor(
    readonly scenario: ScenarioName,
    readonly totalWeeks: number,
    private readonly settings: ModelSettings,
  ) {}

  batch(week: number): InvoiceRow[] {
    let rows = this.weeks.get(week);
    if (!rows) {
      const options = {
        scenario: this.scenario,
        weeks: this.totalWeeks,
        rowsPerWeek: this.settings.rowsPerWeek,
        seed: this.settings.seed,
      };
      rows = [...generateWeek(options, week)];
      this.weeks.set(week, rows);
    }
    return rows;
  }

  private modelFor(window: DataWindow): Promise<WindowModel> {
    const key = windowKey(window);
    let entry = this.models.get(key);
    if (!entry) {
      entry = this.train(window);
      this.models.set(key, entry);
    }
    return entry;
  }

  private async train(window: DataWindow): Promise<WindowModel> {
    const rows: InvoiceRow[] = [];
    for (let w = window.firstWeek; w <= window.lastWeek; w++) rows.push(...this.batch(w));
    const champion = window.warmFrom ? await this.modelFor(window.warmFrom) : undefined;
    const result = await trainFromRows(rows, {
      warmStartFrom: champion?.model,
      trees: this.settings.trees,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 1,
      maxDepth: 32,
      seed: this.settings.seed,
      modelName: `replay-${this.scenario}`,
      versionId: `w${windowKey(window)}`,
    });
    this.trainings++;
    // The kept trees trained on the champion's rows: they count as seen too.
    const trainingIds = new Set(champion?.trainingIds);
    for (const r of rows) if (!isHoldoutRow(r.invoiceId)) trainingIds.add(r.invoiceId);
    return {
      model: result.model,
      holdoutAccuracy: result.metadata.holdoutMetrics.accuracy,
      holdoutRows: result.metadata.rows.holdout,
      trainingIds,
      scores: new Map(),
    };
  }

  /** The champion baseline the real evaluator compares against: the model's holdout accuracy. */
  async holdoutAccuracy(window: DataWindow): Promise<number> {
    return (await this.modelFor(window)).holdoutAccuracy;
  }

  /** Held-out rows behind that accuracy, as the registry's metadata records them. */
  async holdoutRows(window: DataWindow): Promise<number> {
    return (await this.modelFor(window)).holdoutRows;
  }

  /** Scores batch `week` with the model of `window`, counting rows that model trained on. */
  async score(window: DataWindow, week: number): Promise<BatchScore> {
    const entry = await this.modelFor(window);
    const cached = entry.scores.get(week);
    if (cached) return cached;
    const rows = this.batch(week);
    const cpuBefore = process.cpuUsage();
    const report = evaluateRows(entry.model, rows);
    const cpu = process.cpuUsage(cpuBefore);
    const score = {
      unseenLabelShare: unseenLabelShare(report.perClass, entry.model.forest.classes),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      accuracy: report.accuracy,
      rowsAccepted: report.rowsAccepted,
      rowsSeenInTraining: rows.reduce((n, r) => n + (entry.trainingIds.has(r.invoiceId) ? 1 : 0), 0),
    };
    entry.scores.set(week, score);
    return score;
  }
}
