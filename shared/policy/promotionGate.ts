/**
 * Whether a challenger replaces the champion. Both were scored on the same held-out rows; a
 * challenger must beat the champion by `minGain` (absolute accuracy), and a first model needs at
 * least one held-out row to have been judged at all.
 */
export interface PromotionEvidence {
  challengerAccuracy: number;
  championAccuracy: number | null;
  holdoutRows: number;
  minGain: number;
}

export type PromotionVerdict = { verdict: 'promote' | 'reject'; reason: string };

const pct = (a: number): string => `${(a * 100).toFixed(2)} %`;

export function promotionGate(evidence: PromotionEvidence): PromotionVerdict {
  const { challengerAccuracy, championAccuracy, holdoutRows, minGain } = evidence;
  if (holdoutRows === 0) {
    return {
      verdict: 'reject',
      reason: 'no held-out rows in the data window: the challenger cannot be judged',
    };
  }
  if (championAccuracy === null) {
    return {
      verdict: 'promote',
      reason: `first model: ${pct(challengerAccuracy)} on ${holdoutRows} held-out rows`,
    };
  }
  const better = challengerAccuracy > championAccuracy + minGain;
  return {
    verdict: better ? 'promote' : 'reject',
    reason:
      `challenger ${pct(challengerAccuracy)} vs champion ${pct(championAccuracy)} on the same ${holdoutRows} held-out rows` +
      (minGain > 0 ? ` (must gain ${pct(minGain)})` : ''),
  };
}
