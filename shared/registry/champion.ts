import { z } from 'zod';
import { SHA256_HEX_SCHEMA } from './integrity';
import { REGISTRY_VERSION_ID_SCHEMA } from './names';

const reason = z.string().trim().min(1, 'a reason is required').max(1000);
const sequence = z.number().int().positive();

/**
 * `{model}/champion.json`: the single source of truth for which version serves. It is replaced only
 * by compare-and-swap on its ETag, and it carries everything its history entry holds, so the entry
 * can always be (re)written from it (see modelRegistry.ts, "Order of writes").
 */
export const CHAMPION_POINTER_SCHEMA = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('promote'),
    versionId: REGISTRY_VERSION_ID_SCHEMA,
    promotedAt: z.iso.datetime(),
    reason,
    /** Champion this promotion replaced; null for the first champion. */
    previousVersionId: REGISTRY_VERSION_ID_SCHEMA.nullable(),
    sequence,
    /** SHA-256 of the champion's artifact, checked again when it is loaded (absent in old pointers). */
    artifactSha256: SHA256_HEX_SCHEMA.optional(),
  }),
  z.strictObject({
    action: z.literal('rollback'),
    versionId: REGISTRY_VERSION_ID_SCHEMA,
    promotedAt: z.iso.datetime(),
    reason,
    /** Champion that was rolled back; a rollback always replaces one. */
    previousVersionId: REGISTRY_VERSION_ID_SCHEMA,
    sequence,
    artifactSha256: SHA256_HEX_SCHEMA.optional(),
  }),
]);

export type ChampionPointer = z.output<typeof CHAMPION_POINTER_SCHEMA>;

/** `{model}/history/{sequence}.json`: one per champion change, created once, never rewritten. */
export const HISTORY_ENTRY_SCHEMA = z.discriminatedUnion('action', [
  z.strictObject({
    sequence,
    action: z.literal('promote'),
    versionId: REGISTRY_VERSION_ID_SCHEMA,
    fromVersionId: REGISTRY_VERSION_ID_SCHEMA.nullable(),
    at: z.iso.datetime(),
    reason,
  }),
  z.strictObject({
    sequence,
    action: z.literal('rollback'),
    versionId: REGISTRY_VERSION_ID_SCHEMA,
    fromVersionId: REGISTRY_VERSION_ID_SCHEMA,
    at: z.iso.datetime(),
    reason,
  }),
]);

export type HistoryEntry = z.output<typeof HISTORY_ENTRY_SCHEMA>;

export const CHANGE_OPTIONS_SCHEMA = z.strictObject({
  reason,
  expectedChampion: REGISTRY_VERSION_ID_SCHEMA.nullable(),
});

export function historyEntryOf(pointer: ChampionPointer): HistoryEntry {
  const common = { sequence: pointer.sequence, versionId: pointer.versionId, at: pointer.promotedAt };
  return pointer.action === 'promote'
    ? { ...common, action: 'promote', fromVersionId: pointer.previousVersionId, reason: pointer.reason }
    : { ...common, action: 'rollback', fromVersionId: pointer.previousVersionId, reason: pointer.reason };
}

/**
 * The champions that are still "stacked" after replaying the history: a promotion pushes, a rollback
 * pops. A rollback goes to the entry under the top, so two rollbacks after A→B→C land on A rather
 * than bouncing back to C.
 */
export function championStack(entries: readonly HistoryEntry[]): string[] {
  const stack: string[] = [];
  for (const entry of entries) {
    if (entry.action === 'promote') stack.push(entry.versionId);
    else stack.pop();
  }
  return stack;
}

/**
 * Whether the pointer already records the change a caller asks for. Durable activities run at least
 * once, so a retried promote/rollback whose first attempt won must succeed instead of reporting a
 * conflict with itself.
 */
export function pointerRecords(
  pointer: ChampionPointer,
  change: { action: ChampionPointer['action']; versionId: string | null; fromVersionId: string | null },
): boolean {
  return (
    pointer.action === change.action &&
    (change.versionId === null || pointer.versionId === change.versionId) &&
    pointer.previousVersionId === change.fromVersionId
  );
}
