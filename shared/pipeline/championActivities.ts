import { ConflictError, NotFoundError } from '../errors';
import type { ActivityOutput, ParsedActivityInput } from './activityContracts';
import type { PipelineContext } from './context';

/**
 * The activities that move the champion pointer. Both are compare-and-swap on the registry and
 * safe to repeat: a promotion that already happened is recognised from the pointer's own record,
 * and a rollback checks that the champion is still the one it means to undo.
 */
export async function promoteChallenger(
  ctx: PipelineContext,
  input: ParsedActivityInput<'promoteChallenger'>,
): Promise<ActivityOutput<'promoteChallenger'>> {
  try {
    await ctx.registry.promote(input.modelName, input.versionId, {
      reason: input.reason,
      expectedChampion: input.expectedChampion,
    });
    return { kind: 'promoted', versionId: input.versionId };
  } catch (error) {
    if (error instanceof ConflictError) {
      const current = await ctx.registry.getChampion(input.modelName);
      return { kind: 'conflict', currentChampion: current?.pointer.versionId ?? null };
    }
    throw error;
  }
}

export async function rollbackChampion(
  ctx: PipelineContext,
  input: ParsedActivityInput<'rollbackChampion'>,
): Promise<ActivityOutput<'rollbackChampion'>> {
  const current = await ctx.registry.getChampion(input.modelName);
  if (current?.pointer.versionId !== input.expectedChampion) {
    // Already rolled back by an earlier attempt, or someone else moved it: leave it alone.
    return { championVersionId: current?.pointer.versionId ?? null };
  }
  try {
    const pointer = await ctx.registry.rollback(input.modelName, {
      reason: input.reason,
      expectedChampion: input.expectedChampion,
    });
    return { championVersionId: pointer.versionId };
  } catch (error) {
    // The first champion has nothing to return to: it stays, and the caller records that no API
    // serves it (failing here left the pointer moved under a run recorded as plainly failed).
    if (error instanceof NotFoundError) return { championVersionId: input.expectedChampion };
    throw error;
  }
}
