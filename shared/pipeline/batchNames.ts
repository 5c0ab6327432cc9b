import { createHash } from 'node:crypto';

/**
 * Which names under `incoming/` are batches. Users upload with any tool, so odd but addressable
 * names (spaces, unicode, sub-folders, a leading dot, long names) are ordinary batches. A name is
 * illegal only when keeping it would break something downstream:
 * - a `.` or `..` segment, an empty segment, a leading or trailing `/`: clients resolve dot segments
 *   before sending (the SDK turns `incoming/a/../b` into `incoming/b`), so such a name cannot be
 *   addressed reliably, and in the training container's DATA_BLOBS it would read as a path;
 * - a trailing dot: Azure's naming rules say to avoid it because tools strip it;
 * - control characters (C0, DEL, C1), U+FFFE/U+FFFF and lone surrogates: they cannot be written in
 *   the XML of a blob listing (Azure must encode them; Azurite answers 500), in log lines or in
 *   report file names without escaping;
 * - blank names (only whitespace);
 * - more than MAX_BATCH_NAME_CHARS characters: Azure caps a blob name at 1,024 characters, and the
 *   longest name derived from a batch is `quarantine/{name}.reason.json`.
 * An illegal batch is quarantined under a safe name derived from its hash, with the original name
 * recorded in its reason file.
 */
export const AZURE_MAX_BLOB_NAME_CHARS = 1024;
export const MAX_BATCH_NAME_CHARS = AZURE_MAX_BLOB_NAME_CHARS - 'quarantine/'.length - '.reason.json'.length;

export type BatchNameVerdict =
  | { kind: 'legal'; name: string }
  | { kind: 'illegal'; reason: string; safeName: string; unaddressable: boolean };

const DOT_SEGMENT_REASON = 'the name has a "." or ".." path segment';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]/u;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function safeNameFor(name: string): string {
  return `illegal-name-${createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 24)}`;
}

function illegalReason(name: string): string | null {
  if (name.trim().length === 0) return 'the name is empty or blank';
  if (LONE_SURROGATE.test(name)) return 'the name is not valid Unicode (lone surrogate)';
  if (CONTROL.test(name)) return 'the name contains a control character';
  if (name.length > MAX_BATCH_NAME_CHARS) {
    return `the name has ${name.length} characters; at most ${MAX_BATCH_NAME_CHARS} fit Azure's blob name limit`;
  }
  const segments = name.split('/');
  if (segments.some((s) => s === '.' || s === '..')) return DOT_SEGMENT_REASON;
  if (segments.some((s) => s.length === 0)) return 'the name has an empty path segment';
  if (name.endsWith('.')) return 'the name ends with a dot';
  return null;
}

export function classifyBatchName(name: string): BatchNameVerdict {
  const reason = illegalReason(name);
  if (reason === null) return { kind: 'legal', name };
  return {
    kind: 'illegal',
    reason,
    safeName: safeNameFor(name),
    unaddressable: reason === DOT_SEGMENT_REASON,
  };
}
