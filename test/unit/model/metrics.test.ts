import { ConfusionMatrix } from '../../../shared/model/metrics';

describe('ConfusionMatrix', () => {
  // actual:    a a b b c      (a = '0', b = '9', c = '24')
  // predicted: a b b b a
  const actual = ['0', '0', '9', '9', '24'];
  const predicted = ['0', '9', '9', '9', '0'];

  it('matches hand-computed accuracy, per-class precision/recall and macro-F1', () => {
    const confusion = new ConfusionMatrix();
    actual.forEach((a, i) => confusion.add(a, predicted[i]));
    const m = confusion.metrics();
    expect(m.confusion).toEqual({
      classes: ['0', '9', '24'],
      matrix: [
        [1, 1, 0],
        [0, 2, 0],
        [1, 0, 0],
      ],
    });
    expect(m.accuracy).toBeCloseTo(3 / 5, 12);
    expect(m.perClass['0']).toEqual({ recall: 0.5, precision: 0.5, f1: 0.5, support: 2 });
    expect(m.perClass['9'].recall).toBe(1);
    expect(m.perClass['9'].precision).toBeCloseTo(2 / 3, 12);
    expect(m.perClass['9'].f1).toBeCloseTo(0.8, 12);
    // Never predicted: precision and F1 count as 0 (scikit-learn zero_division).
    expect(m.perClass['24']).toEqual({ recall: 0, precision: 0, f1: 0, support: 1 });
    expect(m.macroF1).toBeCloseTo((0.5 + 0.8 + 0) / 3, 12);
    expect(m.rows).toBe(5);
  });

  it('gives the same result chunk by chunk with indexed chunks', () => {
    const whole = new ConfusionMatrix();
    actual.forEach((a, i) => whole.add(a, predicted[i]));
    const chunked = new ConfusionMatrix();
    // Chunk 1 labels in batch-dictionary order, predictions in model-class order.
    chunked.addIndexed(['9', '0'], [1, 1, 0], ['0', '9', '24'], [0, 1, 1]);
    chunked.addIndexed(['9', '24'], [0, 1], ['0', '9', '24'], [1, 0]);
    expect(chunked.metrics()).toEqual(whole.metrics());
    const merged = new ConfusionMatrix();
    merged.merge(chunked);
    expect(merged.metrics()).toEqual(whole.metrics());
  });

  it('leaves classes that never occur out of macro-F1 and sorts classes as rates', () => {
    const confusion = new ConfusionMatrix(['25.5', '5.5', '14']);
    confusion.add('5.5', '5.5', 3);
    confusion.add('25.5', '25.5', 1);
    const m = confusion.metrics();
    expect(m.confusion.classes).toEqual(['5.5', '14', '25.5']);
    expect(m.macroF1).toBe(1);
    expect(m.perClass['14'].support).toBe(0);
  });

  it('reports zeros, not NaN, when empty', () => {
    const m = new ConfusionMatrix().metrics();
    expect(m.accuracy).toBe(0);
    expect(m.macroF1).toBe(0);
  });
});
