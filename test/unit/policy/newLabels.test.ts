import { unseenLabelShare } from '../../../shared/policy/newLabels';

describe('unseenLabelShare', () => {
  it('is the share of rows whose true class the model does not know', () => {
    const perClass = { '24': { support: 90 }, '14': { support: 8 }, '25.5': { support: 2 } };
    expect(unseenLabelShare(perClass, ['24', '14', '10'])).toBeCloseTo(0.02, 12);
    expect(unseenLabelShare(perClass, ['24', '14', '25.5'])).toBe(0);
  });

  it('is 0 for an empty batch', () => {
    expect(unseenLabelShare({}, ['24'])).toBe(0);
    expect(unseenLabelShare({ '24': { support: 0 } }, [])).toBe(0);
  });
});
