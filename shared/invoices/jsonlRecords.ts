import { isUtf8 } from 'node:buffer';
import { INVALID_UTF8, ROW, type RawRecord, type RecordLimits, oversizedRow } from './limits';

const LF = 0x0a;
const CR = 0x0d;

export type JsonlRecord = RawRecord<unknown>;

/**
 * Splits a byte stream into JSON Lines (LF or CRLF) and parses each line. Blank lines are skipped
 * and not counted. A line over the row limit is skipped unread; at most one line plus one chunk
 * is held in memory.
 */
export class JsonlRecordSplitter {
  private carry: Buffer | null = null;
  private discardedBytes = 0;
  private atStart = true;

  constructor(private readonly limits: RecordLimits) {}

  push(chunk: Buffer): JsonlRecord[] {
    const out: JsonlRecord[] = [];
    let buf = chunk;
    let pos = 0;
    if (this.atStart) {
      this.atStart = false;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) pos = 3;
    }
    if (this.carry) {
      buf = Buffer.concat([this.carry, chunk], this.carry.length + chunk.length);
      this.carry = null;
    }
    for (let lf = buf.indexOf(LF, pos); lf >= 0; lf = buf.indexOf(LF, pos)) {
      if (this.discardedBytes > 0) {
        out.push(oversizedRow(this.discardedBytes + lf - pos, this.limits));
        this.discardedBytes = 0;
      } else {
        this.line(buf, pos, lf, out);
      }
      pos = lf + 1;
    }
    const remaining = buf.length - pos;
    if (this.discardedBytes > 0) {
      this.discardedBytes += remaining;
    } else if (remaining > this.limits.maxRecordBytes) {
      this.discardedBytes = remaining;
    } else if (remaining > 0) {
      this.carry = Buffer.from(buf.subarray(pos));
    }
    return out;
  }

  end(): JsonlRecord[] {
    const out: JsonlRecord[] = [];
    if (this.discardedBytes > 0) {
      out.push(oversizedRow(this.discardedBytes, this.limits));
      this.discardedBytes = 0;
    } else if (this.carry) {
      this.line(this.carry, 0, this.carry.length, out);
      this.carry = null;
    }
    return out;
  }

  private line(buf: Buffer, start: number, lf: number, out: JsonlRecord[]): void {
    const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
    if (end - start > this.limits.maxRecordBytes) {
      out.push(oversizedRow(end - start, this.limits));
      return;
    }
    const bytes = buf.subarray(start, end);
    if (!isUtf8(bytes)) {
      // A blank line of stray high bytes is still a defect, so validity is checked before blankness.
      out.push(INVALID_UTF8);
      return;
    }
    const text = bytes.toString('utf8');
    if (text.trim().length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      out.push({
        kind: 'malformed',
        site: ROW,
        reason: `line is not valid JSON: ${(error as Error).message}`,
      });
      return;
    }
    const tooLong = oversizedString(value, this.limits.maxFieldBytes);
    if (tooLong) {
      out.push({
        kind: 'malformed',
        site: { kind: 'key', key: tooLong.key },
        reason: `is ${tooLong.bytes} bytes, more than the ${this.limits.maxFieldBytes}-byte cell limit`,
      });
      return;
    }
    out.push({ kind: 'ok', value });
  }
}

function oversizedString(value: unknown, maxBytes: number): { key: string; bytes: number } | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  for (const [key, field] of Object.entries(value)) {
    // A UTF-16 code unit is at most 3 UTF-8 bytes, so short strings skip the exact count.
    if (typeof field === 'string' && field.length * 3 > maxBytes) {
      const bytes = Buffer.byteLength(field, 'utf8');
      if (bytes > maxBytes) return { key, bytes };
    }
  }
  return undefined;
}
