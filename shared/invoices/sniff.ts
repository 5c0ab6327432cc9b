/**
 * Content sniffing on the first bytes of a batch: gzip magic, and signs that a "batch" is really a
 * binary file (image, spreadsheet, PDF, random bytes), so it fails whole with one clear reason
 * instead of producing thousands of nonsense row rejections.
 */
export const SNIFF_BYTES = 8192;

export function hasGzipMagic(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

const SIGNATURES: readonly { bytes: readonly number[]; what: string }[] = [
  { bytes: [0x89, 0x50, 0x4e, 0x47], what: 'a PNG image' },
  { bytes: [0xff, 0xd8, 0xff], what: 'a JPEG image' },
  { bytes: [0x47, 0x49, 0x46, 0x38], what: 'a GIF image' },
  { bytes: [0x25, 0x50, 0x44, 0x46, 0x2d], what: 'a PDF document' },
  { bytes: [0x50, 0x4b, 0x03, 0x04], what: 'a ZIP archive (an .xlsx workbook is one; export it as CSV)' },
  { bytes: [0xd0, 0xcf, 0x11, 0xe0], what: 'an old Office document (.xls); export it as CSV' },
];

export type HeadVerdict =
  { kind: 'text' } | { kind: 'binary'; what: string } | { kind: 'utf16'; byteOrder: 'LE' | 'BE' };

/** Judges the first (up to SNIFF_BYTES) decompressed bytes of a batch. */
export function classifyHead(head: Buffer): HeadVerdict {
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return { kind: 'utf16', byteOrder: 'LE' };
  if (head.length >= 2 && head[0] === 0xfe && head[1] === 0xff) return { kind: 'utf16', byteOrder: 'BE' };
  for (const signature of SIGNATURES) {
    if (signature.bytes.every((b, i) => head[i] === b)) return { kind: 'binary', what: signature.what };
  }
  if (head.includes(0)) return { kind: 'binary', what: 'binary data (it contains NUL bytes)' };
  // Text has almost no C0 control characters besides tab, CR and LF; random bytes have ~10 %.
  let controls = 0;
  for (let i = 0; i < head.length; i++) {
    const c = head[i];
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) controls++;
  }
  if (head.length > 0 && controls / head.length > 0.01) {
    return { kind: 'binary', what: 'binary data (it is full of control characters)' };
  }
  return { kind: 'text' };
}
