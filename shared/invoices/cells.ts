import { parseGrammarNumber, type CellResult, type NumberGrammar } from './numberGrammar';

export type { CellResult } from './numberGrammar';

/**
 * One check per invoice column, as plain functions: the batch schema (zod, one row at a time) and
 * the model API (column by column, stopping after a few issues) both call these, so a cell means
 * the same thing in an uploaded batch and in a request. Each takes what CSV (strings) or JSON
 * (strings, numbers, booleans) may carry and returns the stored value or a message without the
 * column name (the caller puts the column in the issue path).
 */
export type CellCheck<T> = (raw: unknown) => CellResult<T>;

const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
const currencies = new Set(Intl.supportedValuesOf('currency'));

function fail(message: string): { ok: false; message: string } {
  return { ok: false, message };
}

function requiredString(raw: unknown): CellResult<string> {
  if (raw === undefined || raw === null) return fail('required');
  if (typeof raw !== 'string') return fail(`expected a string, got ${typeof raw}`);
  return { ok: true, value: raw };
}

export const checkIdentifier: CellCheck<string> = (raw) => {
  const text = requiredString(raw);
  if (!text.ok) return text;
  const value = text.value.trim();
  if (value === '') return fail('required');
  if (value.length > 64) return fail('at most 64 characters');
  return { ok: true, value };
};

/** Invoices older than this or dated this far ahead are typos (year 0000, 20224), not invoices. */
export const MIN_INVOICE_YEAR = 1970;
export const MAX_INVOICE_YEAR = 2100;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Verdicts by cell text: a batch holds a few dozen distinct dates, so each is parsed once. */
const issuedAtVerdicts = new Map<string, CellResult<string>>();
const MAX_CACHED_DATES = 4096;

export const checkIssuedAt: CellCheck<string> = (raw) => {
  if (typeof raw !== 'string' || raw.length > 10) return checkIssuedAtText(raw);
  let verdict = issuedAtVerdicts.get(raw);
  if (verdict === undefined) {
    verdict = checkIssuedAtText(raw);
    if (issuedAtVerdicts.size >= MAX_CACHED_DATES) issuedAtVerdicts.clear();
    issuedAtVerdicts.set(raw, verdict);
  }
  return verdict;
};

const checkIssuedAtText: CellCheck<string> = (raw) => {
  const text = requiredString(raw);
  if (!text.ok) return text;
  const match = ISO_DATE.exec(text.value);
  if (!match) return fail('expected an ISO date (YYYY-MM-DD)');
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const date = new Date(Date.UTC(year, month - 1, day));
  if (month < 1 || month > 12 || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return fail('expected an ISO date (YYYY-MM-DD)');
  }
  if (year < MIN_INVOICE_YEAR || year > MAX_INVOICE_YEAR) {
    return fail(`expected a date in the years ${MIN_INVOICE_YEAR} to ${MAX_INVOICE_YEAR}`);
  }
  return { ok: true, value: text.value };
};

/** ICU lookups cost microseconds each; at most 26² codes, so the answers are kept. */
const knownRegions = new Map<string, boolean>();
function isKnownRegion(code: string): boolean {
  let known = knownRegions.get(code);
  if (known === undefined) {
    known = regionNames.of(code) !== undefined;
    knownRegions.set(code, known);
  }
  return known;
}

/** ISO 3166-1 alpha-2, checked against ICU's region list (so `XX` and `ZZ` are rejected). */
export const checkCountryCode: CellCheck<string> = (raw) => {
  const text = requiredString(raw);
  if (!text.ok) return text;
  if (!/^[A-Z]{2}$/.test(text.value)) return fail('expected an ISO 3166 alpha-2 country code');
  if (!isKnownRegion(text.value)) return fail('unknown ISO 3166 country code');
  return text;
};

/** ISO 4217, checked against ICU's currency list. */
export const checkCurrencyCode: CellCheck<string> = (raw) => {
  const text = requiredString(raw);
  if (!text.ok) return text;
  if (!/^[A-Z]{3}$/.test(text.value)) return fail('expected an ISO 4217 currency code');
  if (!currencies.has(text.value)) return fail('unknown ISO 4217 currency code');
  return text;
};

export const checkAccountCode: CellCheck<string> = (raw) => {
  const text = requiredString(raw);
  if (!text.ok) return text;
  const value = text.value.trim();
  if (!/^\d{3,6}$/.test(value)) return fail('expected a 3-6 digit account code');
  return { ok: true, value };
};

function numberColumn(grammar: NumberGrammar, min: number, max: number, range: string): CellCheck<number> {
  return (raw) => {
    const parsed = parseGrammarNumber(raw, grammar);
    if (!parsed.ok) return parsed;
    if (parsed.value < min || parsed.value > max) return fail(range);
    return parsed;
  };
}

export const checkAmountNet = numberColumn(
  { sign: true, fraction: true, exponent: true },
  -1e9,
  1e9,
  'must be between -1e9 and 1e9',
);

const WHOLE_NUMBER: NumberGrammar = { sign: false, fraction: false, exponent: false };

export const checkLineCount: CellCheck<number> = (raw) => {
  const parsed = parseGrammarNumber(raw, WHOLE_NUMBER);
  if (!parsed.ok) return parsed;
  if (parsed.value < 1) return fail('must be at least 1');
  if (parsed.value > 10_000) return fail('must be at most 10000');
  return parsed;
};

export const checkVatRatePercent = numberColumn(
  { sign: false, fraction: true, exponent: false },
  0,
  100,
  'must be between 0 and 100',
);

const TRUE_CELLS = new Set(['true', 'TRUE', '1']);
const FALSE_CELLS = new Set(['false', 'FALSE', '0']);

export const checkBoolean: CellCheck<boolean> = (raw) => {
  if (typeof raw === 'boolean') return { ok: true, value: raw };
  if (raw === undefined || raw === null) return fail('required');
  if (typeof raw === 'string' && TRUE_CELLS.has(raw)) return { ok: true, value: true };
  if (typeof raw === 'string' && FALSE_CELLS.has(raw)) return { ok: true, value: false };
  return fail('expected true or false');
};

/** Every column of a labelled invoice row, in the CSV column order. */
export const INVOICE_CELL_CHECKS = {
  invoiceId: checkIdentifier,
  issuedAt: checkIssuedAt,
  supplierId: checkIdentifier,
  supplierCountry: checkCountryCode,
  receiverId: checkIdentifier,
  accountCode: checkAccountCode,
  currency: checkCurrencyCode,
  amountNet: checkAmountNet,
  lineCount: checkLineCount,
  reverseCharge: checkBoolean,
  vatRatePercent: checkVatRatePercent,
} as const;
