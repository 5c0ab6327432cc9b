/**
 * The one number grammar of invoice data, for uploaded batches and model-API requests alike.
 * JavaScript's own coercion (`Number('0x10')` is 16, `Number('')` is 0, `Number('Infinity')`)
 * reads far more than an invoice export ever means, so a cell is a number only when it is a plain
 * decimal: digits, an optional fraction, and a sign or exponent only where the column allows it.
 */

export interface NumberGrammar {
  /** A leading `+` or `-` (amounts may be credit notes; counts and rates may not). */
  sign: boolean;
  /** Digits after a decimal point. */
  fraction: boolean;
  /** `e`/`E` with an optional signed exponent, as spreadsheets export large amounts. */
  exponent: boolean;
}

export type CellResult<T> = { ok: true; value: T } | { ok: false; message: string };

/** Longer than any legal number in these columns; checked first so a huge cell costs nothing. */
const MAX_NUMBER_CHARS = 32;

/** By grammar bits (sign 1, fraction 2, exponent 4): a lookup per cell without building a key string. */
const patterns: (RegExp | undefined)[] = new Array<RegExp | undefined>(8);

function patternOf(grammar: NumberGrammar): RegExp {
  const key = (grammar.sign ? 1 : 0) | (grammar.fraction ? 2 : 0) | (grammar.exponent ? 4 : 0);
  let pattern = patterns[key];
  if (!pattern) {
    pattern = new RegExp(
      `^${grammar.sign ? '[+-]?' : ''}[0-9]+${grammar.fraction ? '(?:\\.[0-9]+)?' : ''}${
        grammar.exponent ? '(?:[eE][+-]?[0-9]{1,3})?' : ''
      }$`,
    );
    patterns[key] = pattern;
  }
  return pattern;
}

/** What the grammar allows, said in the rejection so a caller can fix the cell. */
export function describeGrammar(grammar: NumberGrammar): string {
  const kind = grammar.fraction ? 'a plain decimal number' : 'a whole number in plain digits';
  const extras = [grammar.sign ? 'an optional sign' : '', grammar.exponent ? 'an optional exponent' : '']
    .filter(Boolean)
    .join(' and ');
  return extras ? `${kind} with ${extras}` : kind;
}

/**
 * Reads one cell: a JSON number (finite, and whole where fractions are not allowed) or a string
 * in the grammar, surrounded by nothing but spaces. Hex, octal, binary, `Infinity`, `NaN`,
 * thousands separators and the empty string are all refused.
 */
export function parseGrammarNumber(raw: unknown, grammar: NumberGrammar): CellResult<number> {
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return { ok: false, message: 'expected a finite number' };
    if (!grammar.fraction && !Number.isInteger(raw)) return { ok: false, message: 'expected a whole number' };
    if (!grammar.sign && raw < 0) return { ok: false, message: 'must not be negative' };
    return { ok: true, value: raw };
  }
  if (raw === undefined || raw === null) return { ok: false, message: 'required' };
  if (typeof raw !== 'string') return { ok: false, message: `expected ${describeGrammar(grammar)}` };
  if (raw.length > MAX_NUMBER_CHARS) {
    return {
      ok: false,
      message: `expected ${describeGrammar(grammar)} of at most ${MAX_NUMBER_CHARS} characters`,
    };
  }
  const text = raw.trim();
  if (text === '') return { ok: false, message: 'required' };
  if (!patternOf(grammar).test(text)) {
    if (!grammar.sign && text.startsWith('-') && patternOf(grammar).test(text.slice(1))) {
      return { ok: false, message: 'must not be negative' };
    }
    return { ok: false, message: `expected ${describeGrammar(grammar)}` };
  }
  const value = Number(text);
  // `9e999` matches the grammar and overflows to Infinity.
  if (!Number.isFinite(value)) return { ok: false, message: 'expected a finite number' };
  return { ok: true, value };
}
