/**
 * Which accepted batches a retrain reads. Full training takes the newest `windowBatches`; warm
 * start trains its new trees on the batches that arrived after the newest one the champion trained
 * on (same cap) and keeps the champion's older trees, falling back to a full window when there are
 * none (or when none of the champion's batches is among the accepted ones any more).
 *
 * "After the newest" rather than "not in the champion's window": a warm-started champion lists only
 * the batches of its own new trees, while its kept trees saw the older ones. Excluding just its own
 * list would send the next warm start back over those older batches (nearly a full window's work).
 */
export interface TrainingWindowInput {
  /** Accepted batch names, oldest first. */
  acceptedBatches: readonly string[];
  windowBatches: number;
  mode: 'full' | 'warm-start';
  champion: { versionId: string; dataWindow: readonly string[] } | null;
}

export type TrainingWindow =
  { kind: 'train'; batches: string[]; warmStartFrom: string | null } | { kind: 'nothing-to-train' };

export function chooseTrainingWindow(input: TrainingWindowInput): TrainingWindow {
  if (input.acceptedBatches.length === 0) return { kind: 'nothing-to-train' };
  if (input.mode === 'warm-start' && input.champion) {
    const seen = new Set(input.champion.dataWindow);
    let newestSeen = -1;
    input.acceptedBatches.forEach((name, i) => {
      if (seen.has(name)) newestSeen = i;
    });
    const unseen = newestSeen < 0 ? [] : input.acceptedBatches.slice(newestSeen + 1);
    if (unseen.length > 0) {
      return {
        kind: 'train',
        batches: unseen.slice(-input.windowBatches),
        warmStartFrom: input.champion.versionId,
      };
    }
  }
  return { kind: 'train', batches: input.acceptedBatches.slice(-input.windowBatches), warmStartFrom: null };
}
