import { BatchUnreadableError } from '../errors';

export type BatchFormat = 'csv' | 'jsonl';

/** What the caller knows about a batch; `format`/`gzip` override what the file name says. */
export interface BatchSourceInfo {
  fileName: string;
  format?: BatchFormat;
  gzip?: boolean;
}

const SUFFIXES: readonly { suffix: string; format: BatchFormat; gzip: boolean }[] = [
  { suffix: '.csv.gz', format: 'csv', gzip: true },
  { suffix: '.jsonl.gz', format: 'jsonl', gzip: true },
  { suffix: '.csv', format: 'csv', gzip: false },
  { suffix: '.jsonl', format: 'jsonl', gzip: false },
];

export const SUPPORTED_SUFFIXES = SUFFIXES.map((s) => s.suffix);

/**
 * Format and compression from the file name (case-insensitive). The parser still sniffs the gzip
 * magic bytes, so a mislabelled `.csv` that is really gzip is read correctly.
 */
export function detectFormat(fileName: string): { format: BatchFormat; gzip: boolean } {
  const lower = fileName.toLowerCase();
  const match = SUFFIXES.find((s) => lower.endsWith(s.suffix));
  if (!match) {
    throw new BatchUnreadableError(
      `Unsupported batch file "${fileName}": expected one of ${SUPPORTED_SUFFIXES.join(', ')}`,
      'unsupported-format',
      { details: { fileName } },
    );
  }
  return { format: match.format, gzip: match.gzip };
}

/** Format from `info.format` when given, else from the name. */
export function resolveFormat(info: BatchSourceInfo): { format: BatchFormat; gzip: boolean } {
  if (info.format) {
    const fromName = tryDetect(info.fileName);
    return { format: info.format, gzip: info.gzip ?? fromName?.gzip ?? false };
  }
  const detected = detectFormat(info.fileName);
  return { format: detected.format, gzip: info.gzip ?? detected.gzip };
}

function tryDetect(fileName: string): { format: BatchFormat; gzip: boolean } | undefined {
  try {
    return detectFormat(fileName);
  } catch {
    return undefined;
  }
}
