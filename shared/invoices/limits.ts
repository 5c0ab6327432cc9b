/** Size limits that keep a hostile or broken batch from buffering unbounded memory. */
export interface RecordLimits {
  /** A single cell (CSV) or string value (JSONL) larger than this rejects its row. */
  maxFieldBytes: number;
  /** A row larger than this is skipped unread (only its size is counted) and rejected. */
  maxRecordBytes: number;
}

export const DEFAULT_LIMITS: RecordLimits = { maxFieldBytes: 64 * 1024, maxRecordBytes: 1024 * 1024 };

/** Where a defect sits: the whole row, a CSV cell by position, or a JSON key. */
export type DefectSite = { kind: 'row' } | { kind: 'cell'; index: number } | { kind: 'key'; key: string };

/**
 * The raw outcome of splitting bytes into rows, before any schema is applied. For a cell or key
 * the reason is a predicate ("has a stray quote") that the parser prefixes with the column name.
 */
export type RawRecord<T> = { kind: 'ok'; value: T } | { kind: 'malformed'; site: DefectSite; reason: string };

export const ROW: DefectSite = { kind: 'row' };

export function oversizedRow(bytes: number, limits: RecordLimits): RawRecord<never> {
  return {
    kind: 'malformed',
    site: ROW,
    reason: `row is ${bytes} bytes, more than the ${limits.maxRecordBytes}-byte row limit; it was skipped unread`,
  };
}

export const INVALID_UTF8: RawRecord<never> = {
  kind: 'malformed',
  site: ROW,
  reason: 'row contains bytes that are not valid UTF-8',
};
