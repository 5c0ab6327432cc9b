/**
 * Reads the text of a large `{"invoices": [row, row, ...]}` body a slice of rows at a time.
 * JSON.parse of a 10,000-row body blocks the event loop for tens of milliseconds in one piece;
 * parsed a few hundred rows per call, with the server yielding in between, other requests and
 * /health keep answering, and a batch whose first rows are invalid is refused without parsing
 * the rest. The scan only finds where each row ends (strings and nesting); JSON.parse still
 * decides what is valid JSON, so the grammar is exactly JSON's.
 */

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;

export class BatchText {
  private position: number;
  private finished = false;
  /** Rows handed out so far. */
  rowsRead = 0;

  private constructor(
    readonly text: string,
    start: number,
  ) {
    this.position = start;
  }

  /**
   * A reader when the text is exactly `{ "invoices": [ ... ] }` (any whitespace), else null: any
   * other shape is parsed whole, as small bodies are, and refused by the envelope check.
   */
  static open(text: string): BatchText | null {
    let i = skipWs(text, 0);
    if (text.charCodeAt(i) !== OPEN_BRACE) return null;
    i = skipWs(text, i + 1);
    if (!text.startsWith('"invoices"', i)) return null;
    i = skipWs(text, i + '"invoices"'.length);
    if (text.charCodeAt(i) !== COLON) return null;
    i = skipWs(text, i + 1);
    if (text.charCodeAt(i) !== OPEN_BRACKET) return null;
    // Whatever follows the array must be the closing brace; checked from the end first, so a
    // body with more keys is handed to the whole-body path before any row is parsed.
    let end = text.length - 1;
    while (end > i && WS.has(text.charCodeAt(end))) end--;
    if (text.charCodeAt(end) !== CLOSE_BRACE) return null;
    return new BatchText(text, i + 1);
  }

  /**
   * The next rows (at most `maxRows`), parsed; null once the array has ended. Throws SyntaxError
   * for text that is not JSON, and `NotOnlyInvoices` if the array is followed by anything but `}`.
   */
  next(maxRows: number): unknown[] | null {
    if (this.finished) return null;
    const text = this.text;
    let i = skipWs(text, this.position);
    const first = i;
    let last = i;
    let count = 0;
    while (count < maxRows) {
      i = skipWs(text, i);
      const c = text.charCodeAt(i);
      if (c === CLOSE_BRACKET && count === 0 && this.rowsRead === 0) {
        this.finish(i + 1);
        return [];
      }
      i = valueEnd(text, i);
      last = i;
      count++;
      i = skipWs(text, i);
      const separator = text.charCodeAt(i);
      if (separator === COMMA) {
        i++;
        continue;
      }
      if (separator === CLOSE_BRACKET) {
        this.finish(i + 1);
        break;
      }
      throw new SyntaxError(`expected , or ] at character ${i}`);
    }
    this.position = i;
    this.rowsRead += count;
    return JSON.parse(`[${text.slice(first, last)}]`) as unknown[];
  }

  /** Counts the rows left without parsing them (to say how many a too-large batch had). */
  countRest(): number {
    let counted = 0;
    const text = this.text;
    let i = this.position;
    while (!this.finished) {
      i = skipWs(text, i);
      i = skipWs(text, valueEnd(text, i));
      counted++;
      const separator = text.charCodeAt(i);
      if (separator === CLOSE_BRACKET) this.finish(i + 1);
      else if (separator === COMMA) i++;
      else throw new SyntaxError(`expected , or ] at character ${i}`);
    }
    return counted;
  }

  private finish(afterArray: number): void {
    this.finished = true;
    const i = skipWs(this.text, afterArray);
    if (this.text.charCodeAt(i) !== CLOSE_BRACE) throw new NotOnlyInvoices();
    if (skipWs(this.text, i + 1) !== this.text.length) throw new SyntaxError('text after the closing brace');
  }
}

/** The body has keys besides `invoices`: the whole-body path reports them properly. */
export class NotOnlyInvoices extends Error {}

function skipWs(text: string, from: number): number {
  let i = from;
  while (i < text.length && WS.has(text.charCodeAt(i))) i++;
  return i;
}

/** As endOfValue, but a missing value (`[1,]`, `[,1]`) is a syntax error, as in JSON. */
function valueEnd(text: string, from: number): number {
  const end = endOfValue(text, from);
  if (end === from) throw new SyntaxError(`expected a value at character ${from}`);
  return end;
}

/** Index just past the JSON value starting at `from` (its syntax is left to JSON.parse). */
function endOfValue(text: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i++;
      while (i < text.length) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i += 2;
        else if (s === QUOTE) break;
        else i++;
      }
      i++;
      if (depth === 0) return i;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 0) return i;
      depth--;
      if (depth === 0) return i + 1;
    } else if (depth === 0 && (c === COMMA || WS.has(c))) return i;
    i++;
  }
  if (depth > 0) throw new SyntaxError('unexpected end of JSON');
  return i;
}
