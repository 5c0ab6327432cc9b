import { isUtf8 } from 'node:buffer';
import { INVALID_UTF8, ROW, type RawRecord, type RecordLimits, oversizedRow } from './limits';

/**
 * An RFC 4180 record splitter over a byte stream (comma, double quote, `""` escape, LF or CRLF,
 * line breaks inside quotes), written for this parser rather than using csv-parse because:
 * - a row over the size limit must be skipped and the stream resumed at the next row; csv-parse's
 *   `max_record_size` either aborts the whole parse or, with `skip_records_with_error`, silently
 *   drops the rest of every following chunk;
 * - every defect (stray quote, NUL, invalid UTF-8, huge cell) becomes a rejection of that one row
 *   with its row number, never a parse abort;
 * - it runs several times faster than csv-parse's ~7 MB/s, leaving the time budget to zod.
 * Memory is bounded: at most one row (≤ maxRecordBytes) plus one chunk is held.
 */
const COMMA = 0x2c;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

const State = {
  FieldStart: 0,
  Unquoted: 1,
  Quoted: 2,
  /** Saw a quote inside a quoted cell: either an escaped `""` or the closing quote. */
  QuoteInQuoted: 3,
} as const;
type State = (typeof State)[keyof typeof State];

export type CsvRecord = RawRecord<string[]>;

export class CsvRecordSplitter {
  private buf: Buffer = Buffer.alloc(0);
  private recStart = 0;
  private state: State = State.FieldStart;
  // Cell boundaries relative to recStart, so they survive carrying the row into the next chunk.
  private fieldStart = 0;
  private starts: number[] = [];
  private ends: number[] = [];
  private quotedFlags: boolean[] = [];
  private quoted = false;
  private strayQuoteCell = -1;
  private hasNul = false;
  /** When > 0 the current row is over the limit: only its length is tracked, its bytes dropped. */
  private discardedBytes = 0;
  private atStart = true;

  constructor(private readonly limits: RecordLimits) {}

  push(chunk: Buffer): CsvRecord[] {
    const out: CsvRecord[] = [];
    let scanFrom: number;
    if (this.discardedBytes > 0 || this.recStart >= this.buf.length) {
      this.buf = chunk;
      this.recStart = 0;
      scanFrom = 0;
    } else {
      const carried = this.buf.length - this.recStart;
      this.buf = Buffer.concat([this.buf.subarray(this.recStart), chunk], carried + chunk.length);
      this.recStart = 0;
      scanFrom = carried;
    }
    if (this.atStart) {
      this.atStart = false;
      // A UTF-8 byte order mark (Excel writes one) is not part of the first header name.
      if (this.buf[0] === 0xef && this.buf[1] === 0xbb && this.buf[2] === 0xbf) {
        this.recStart = 3;
        scanFrom = 3;
      }
    }
    this.scan(scanFrom, out);
    this.carryOver();
    return out;
  }

  end(): CsvRecord[] {
    const out: CsvRecord[] = [];
    const n = this.buf.length;
    const midRecord = this.discardedBytes > 0 || this.recStart < n || this.starts.length > 0;
    if (!midRecord) return out;
    if (this.discardedBytes > 0) {
      out.push(oversizedRow(this.discardedBytes + n - this.recStart, this.limits));
    } else if (this.state === State.Quoted) {
      out.push({
        kind: 'malformed',
        site: { kind: 'cell', index: this.starts.length },
        reason: 'opens a double quote that is never closed before the end of the file',
      });
    } else {
      const end = n > this.recStart && this.buf[n - 1] === CR ? n - 1 : n;
      this.endField(end);
      this.emitRecord(n, end, out);
    }
    this.resetRecord(n);
    this.buf = Buffer.alloc(0);
    this.recStart = 0;
    return out;
  }

  private scan(from: number, out: CsvRecord[]): void {
    const buf = this.buf;
    const n = buf.length;
    let state: State = this.state;
    for (let i = from; i < n; i++) {
      const c = buf[i];
      if (state === State.Quoted) {
        if (c === QUOTE) state = State.QuoteInQuoted;
        else if (c === 0) this.hasNul = true;
        continue;
      }
      // Every byte with a meaning here (NUL, LF, CR, quote, comma) is at most 0x2c; letters,
      // digits, '-', '.' and UTF-8 continuation bytes are all above it: one compare for most bytes.
      if (c > COMMA) {
        if (state !== State.Unquoted) {
          if (state === State.QuoteInQuoted) this.markStrayQuote();
          state = State.Unquoted;
        }
        continue;
      }
      if (c === COMMA) {
        this.endField(i);
        this.fieldStart = i + 1 - this.recStart;
        state = State.FieldStart;
        continue;
      }
      if (c === LF) {
        const end = i > this.recStart && buf[i - 1] === CR ? i - 1 : i;
        this.endField(end);
        this.emitRecord(i, end, out);
        this.resetRecord(i + 1);
        state = State.FieldStart;
        continue;
      }
      if (state === State.FieldStart) {
        if (c === QUOTE) {
          this.quoted = true;
          state = State.Quoted;
          continue;
        }
        state = State.Unquoted;
      } else if (state === State.QuoteInQuoted) {
        if (c === QUOTE) {
          state = State.Quoted;
          continue;
        }
        if (c === CR) continue;
        this.markStrayQuote();
        state = State.Unquoted;
      }
      if (c === QUOTE) this.markStrayQuote();
      else if (c === 0) this.hasNul = true;
    }
    this.state = state;
  }

  private markStrayQuote(): void {
    if (this.strayQuoteCell < 0) this.strayQuoteCell = this.starts.length;
  }

  private endField(absEnd: number): void {
    if (this.discardedBytes > 0) return;
    this.starts.push(this.fieldStart);
    this.ends.push(absEnd - this.recStart);
    this.quotedFlags.push(this.quoted);
    this.quoted = false;
  }

  private resetRecord(nextStart: number): void {
    this.recStart = nextStart;
    this.fieldStart = 0;
    this.starts.length = 0;
    this.ends.length = 0;
    this.quotedFlags.length = 0;
    this.quoted = false;
    this.strayQuoteCell = -1;
    this.hasNul = false;
    this.discardedBytes = 0;
  }

  /** Keeps the unfinished row for the next chunk, or switches to discarding it once it is too big. */
  private carryOver(): void {
    const carried = this.buf.length - this.recStart;
    if (this.discardedBytes > 0) {
      this.discardedBytes += this.buf.length - this.recStart;
      this.buf = Buffer.alloc(0);
      this.recStart = 0;
    } else if (carried > this.limits.maxRecordBytes) {
      this.discardedBytes = carried;
      this.starts.length = 0;
      this.ends.length = 0;
      this.quotedFlags.length = 0;
      this.buf = Buffer.alloc(0);
      this.recStart = 0;
    }
  }

  /** `lineEnd` is the absolute index of the LF (or end of data); `end` excludes a trailing CR. */
  private emitRecord(lineEnd: number, end: number, out: CsvRecord[]): void {
    const buf = this.buf;
    const base = this.recStart;
    if (this.discardedBytes > 0) {
      out.push(oversizedRow(this.discardedBytes + lineEnd - base, this.limits));
      return;
    }
    const count = this.starts.length;
    if (count === 1 && !this.quotedFlags[0] && isBlank(buf, base, end)) return;
    if (end - base > this.limits.maxRecordBytes) {
      out.push(oversizedRow(end - base, this.limits));
      return;
    }
    if (this.hasNul) {
      out.push({ kind: 'malformed', site: ROW, reason: 'row contains NUL bytes (binary data)' });
      return;
    }
    // One decode per row. Invalid UTF-8 always decodes to U+FFFD, so only a row containing one needs
    // the byte-level check. Without U+FFFD, a row decodes to one UTF-16 unit per byte only when it
    // is all ASCII; then cells are cheap slices of this string at their byte offsets.
    const text = buf.toString('utf8', base, end);
    const replaced = text.includes('\uFFFD');
    if (replaced && !isUtf8(buf.subarray(base, end))) {
      out.push(INVALID_UTF8);
      return;
    }
    const ascii = !replaced && text.length === end - base;
    if (this.strayQuoteCell >= 0) {
      out.push({
        kind: 'malformed',
        site: { kind: 'cell', index: this.strayQuoteCell },
        reason: 'has a stray double quote (quote the whole cell and double any quote inside it)',
      });
      return;
    }
    const cells = new Array<string>(count);
    for (let k = 0; k < count; k++) {
      const relativeStart = this.starts[k];
      const relativeStop = this.ends[k];
      const start = base + relativeStart;
      const stop = base + relativeStop;
      if (stop - start > this.limits.maxFieldBytes) {
        out.push({
          kind: 'malformed',
          site: { kind: 'cell', index: k },
          reason: `is ${stop - start} bytes, more than the ${this.limits.maxFieldBytes}-byte cell limit`,
        });
        return;
      }
      if (this.quotedFlags[k]) {
        if (stop - start < 2 || buf[stop - 1] !== QUOTE) {
          out.push({
            kind: 'malformed',
            site: { kind: 'cell', index: k },
            reason: 'has text after its closing quote',
          });
          return;
        }
        // A clean quoted cell is exactly `"…"`: strip both ends and unescape doubled quotes.
        const inner = ascii
          ? text.slice(relativeStart + 1, relativeStop - 1)
          : buf.toString('utf8', start + 1, stop - 1);
        cells[k] = inner.includes('"') ? inner.replaceAll('""', '"') : inner;
      } else {
        cells[k] = ascii ? text.slice(relativeStart, relativeStop) : buf.toString('utf8', start, stop);
      }
    }
    out.push({ kind: 'ok', value: cells });
  }
}

function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}
