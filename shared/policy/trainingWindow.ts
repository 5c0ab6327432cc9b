/**
 * Which accepted batches a retrain reads. Full training takes the newest `windowBatches`; warm
 * start trains its new trees on what the champion has not seen (newest first, same cap) and keeps
 * the champion's older trees, falling back to a full window when the champion has seen everything.
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
    const unseen = input.acceptedBatches.filter((name) => !seen.has(name));
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
