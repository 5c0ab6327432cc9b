/** Fewest rows with an unknown label (as a share of the batch) that ask for a retrain: one stray label does not. */
export const NEW_LABEL_MIN_SHARE = 0.002;

/**
 * Share of a batch's rows whose true label is a class the model was never trained on. The model
 * cannot predict such a row right whatever its features, so while they are few the accuracy hides
 * them (a new VAT rate starting on a batch's last day), and in the next batch they are the rule.
 *
 * Computed from the per-class support the streaming evaluator already counts (the confusion
 * matrix's actual labels), so measuring it costs nothing beyond scoring the batch.
 */
export function unseenLabelShare(
  perClass: Readonly<Record<string, { readonly support: number }>>,
  knownClasses: readonly string[],
): number {
  const known = new Set(knownClasses);
  let rows = 0;
  let unseen = 0;
  for (const [label, stats] of Object.entries(perClass)) {
    rows += stats.support;
    if (!known.has(label)) unseen += stats.support;
  }
  return rows > 0 ? unseen / rows : 0;
}
