import { generateWeek } from '../../../shared/invoices/generator';
import { evaluateRows } from '../../../shared/model/evaluation';
import { isHoldoutRow, trainFromRows } from '../../../shared/model/training';
import { legacyPredictor } from '../../../shared/pipelines/multiScoring';
import {
  smallestTreeCountWithin,
  TreeCountEvaluator,
  type TreeCountAccuracy,
} from '../../../shared/serving/treeCountAccuracy';

describe('accuracy by tree count', () => {
  it('matches the evaluator of a forest cut to its first k trees, for every k', async () => {
    const rows = [...generateWeek({ scenario: 'stable', weeks: 2, rowsPerWeek: 3000, seed: 5 }, 0)];
    const trained = await trainFromRows(rows, {
      trees: 12,
      maxFeatures: 'sqrt',
      minSamplesLeaf: 1,
      maxDepth: 16,
      seed: 5,
      threads: 1,
      modelName: 'vat-rate',
      versionId: 'k-test',
    });
    const heldOut = [...generateWeek({ scenario: 'stable', weeks: 2, rowsPerWeek: 3000, seed: 5 }, 1)].filter(
      (r) => isHoldoutRow(r.invoiceId),
    );
    const evaluator = new TreeCountEvaluator(legacyPredictor(trained.model));
    for (const row of heldOut) evaluator.add(row);
    const result = evaluator.result();
    expect(result.holdoutRows).toBe(heldOut.length);
    expect(result.points.map((p) => p.trees)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    for (const k of [1, 2, 5, 12]) {
      const cut = {
        ...trained.model,
        forest: { ...trained.model.forest, trees: trained.model.forest.trees.slice(0, k) },
      };
      // Soft-vote sums in a different order can flip an exact tie: at most a row or two.
      expect(
        Math.abs(evaluateRows(cut, heldOut).accuracy - result.points[k - 1].accuracy),
      ).toBeLessThanOrEqual(2 / heldOut.length);
    }
    // More trees help on the whole: one tree is clearly worse than twelve.
    expect(result.points[0].accuracy).toBeLessThan(result.points[11].accuracy);
  });

  const curve = (values: number[], holdoutRows = 100): TreeCountAccuracy => ({
    fullTrees: values.length,
    holdoutRows,
    points: values.map((accuracy, i) => ({ trees: i + 1, accuracy })),
  });

  it('chooses the fewest trees within the allowed loss, including an exact tie with the bound', () => {
    expect(smallestTreeCountWithin(curve([0.8, 0.89, 0.898, 0.9]), 0.002)).toEqual({
      kind: 'fewer-trees',
      trees: 3,
      accuracy: 0.898,
      fullAccuracy: 0.9,
      fullTrees: 4,
    });
    expect(smallestTreeCountWithin(curve([0.8, 0.9, 0.91, 0.9]), 0)).toMatchObject({
      kind: 'fewer-trees',
      trees: 2,
    });
  });

  it('keeps every tree when nothing smaller is close enough, or nothing was held out', () => {
    expect(smallestTreeCountWithin(curve([0.5, 0.6, 0.9]), 0.01)).toMatchObject({
      kind: 'all-trees',
      trees: 3,
    });
    expect(smallestTreeCountWithin(curve([0, 0, 0], 0), 0.5)).toMatchObject({
      kind: 'all-trees',
      reason: 'no held-out rows to measure fewer trees on',
    });
  });

  it('rejects a curve with a missing tree count', () => {
    expect(() =>
      smallestTreeCountWithin(
        {
          fullTrees: 3,
          holdoutRows: 5,
          points: [
            { trees: 1, accuracy: 0.5 },
            { trees: 3, accuracy: 0.6 },
          ],
        },
        0.01,
      ),
    ).toThrow(/expected 2 trees/);
  });
});
