import { vatClassOf, type InvoiceRow } from '../invoices/schema';
import { fnv1a32 } from './random';

/** What the model reads from an invoice: everything but the label. */
export type FeatureRow = Omit<InvoiceRow, 'vatRatePercent'>;

export const CATEGORICAL_FIELDS = [
  'supplierId',
  'supplierCountry',
  'receiverId',
  'accountCode',
  'currency',
] as const;
export type CategoricalField = (typeof CATEGORICAL_FIELDS)[number];

/** Folds for out-of-fold target statistics; chosen by invoice id so they never change between runs. */
export const TARGET_FOLDS = 5;
export const FOLD_SALT = 0x5eed;

type TypedArray = Uint8Array | Uint32Array | Float64Array;

/** An append-only typed column that doubles its buffer, so rows cost bytes rather than objects. */
export class GrowableColumn<T extends TypedArray> {
  private data: T;
  length = 0;

  constructor(
    private readonly make: (capacity: number) => T,
    capacity = 1024,
  ) {
    this.data = make(capacity);
  }

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = this.make(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  /** A view of the filled part (shares memory; valid until the next push that grows the buffer). */
  view(): T {
    return this.data.subarray(0, this.length) as T;
  }
}

/** Strings interned to dense ids in order of first appearance. */
export class Dictionary {
  private readonly ids = new Map<string, number>();
  readonly values: string[] = [];

  id(value: string): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.ids.set(value, id);
      this.values.push(value);
    }
    return id;
  }
}

/**
 * Invoice rows held column by column: categorical fields as dictionary ids, numbers in typed arrays,
 * calendar parts precomputed. Training keeps a whole window in this form (about 40 bytes a row);
 * evaluation and prediction fill one small chunk at a time.
 */
export class InvoiceColumns {
  readonly dictionaries = Object.fromEntries(CATEGORICAL_FIELDS.map((f) => [f, new Dictionary()])) as Record<
    CategoricalField,
    Dictionary
  >;
  private readonly categoryIds: Record<CategoricalField, GrowableColumn<Uint32Array>>;
  private readonly amountNetColumn: GrowableColumn<Float64Array>;
  private readonly lineCountColumn: GrowableColumn<Float64Array>;
  private readonly reverseChargeColumn: GrowableColumn<Uint8Array>;
  private readonly monthColumn: GrowableColumn<Uint8Array>;
  private readonly dayOfWeekColumn: GrowableColumn<Uint8Array>;
  private readonly foldColumn: GrowableColumn<Uint8Array>;
  /** Label ids into `labelDictionary`; only filled for labelled rows. */
  readonly labelDictionary = new Dictionary();
  private readonly labelColumn: GrowableColumn<Uint32Array>;
  length = 0;

  /** `expectedRows`: the room first made (columns grow as needed); small for the model API's chunks. */
  constructor(expectedRows = 1024) {
    const capacity = Math.max(16, Math.min(expectedRows, 1 << 20));
    const column = <T extends TypedArray>(make: (n: number) => T): GrowableColumn<T> =>
      new GrowableColumn(make, capacity);
    this.categoryIds = Object.fromEntries(
      CATEGORICAL_FIELDS.map((f) => [f, column((n) => new Uint32Array(n))]),
    ) as Record<CategoricalField, GrowableColumn<Uint32Array>>;
    this.amountNetColumn = column((n) => new Float64Array(n));
    this.lineCountColumn = column((n) => new Float64Array(n));
    this.reverseChargeColumn = column((n) => new Uint8Array(n));
    this.monthColumn = column((n) => new Uint8Array(n));
    this.dayOfWeekColumn = column((n) => new Uint8Array(n));
    this.foldColumn = column((n) => new Uint8Array(n));
    this.labelColumn = column((n) => new Uint32Array(n));
  }

  push(row: FeatureRow, vatClass?: string): void {
    for (const field of CATEGORICAL_FIELDS) {
      this.categoryIds[field].push(this.dictionaries[field].id(row[field]));
    }
    this.amountNetColumn.push(row.amountNet);
    this.lineCountColumn.push(row.lineCount);
    this.reverseChargeColumn.push(row.reverseCharge ? 1 : 0);
    const { month, dayOfWeek } = calendarOf(row.issuedAt);
    this.monthColumn.push(month);
    this.dayOfWeekColumn.push(dayOfWeek);
    this.foldColumn.push(fnv1a32(row.invoiceId, FOLD_SALT) % TARGET_FOLDS);
    if (vatClass !== undefined) this.labelColumn.push(this.labelDictionary.id(vatClass));
    this.length++;
  }

  pushLabelled(row: InvoiceRow): void {
    this.push(row, vatClassOf(row));
  }

  get labelled(): boolean {
    return this.labelColumn.length === this.length;
  }

  categoryIdsOf(field: CategoricalField): Uint32Array {
    return this.categoryIds[field].view();
  }
  get amountNet(): Float64Array {
    return this.amountNetColumn.view();
  }
  get lineCount(): Float64Array {
    return this.lineCountColumn.view();
  }
  get reverseCharge(): Uint8Array {
    return this.reverseChargeColumn.view();
  }
  get month(): Uint8Array {
    return this.monthColumn.view();
  }
  get dayOfWeek(): Uint8Array {
    return this.dayOfWeekColumn.view();
  }
  get fold(): Uint8Array {
    return this.foldColumn.view();
  }
  /** Label ids (into labelDictionary) of labelled rows. */
  get labelIds(): Uint32Array {
    return this.labelColumn.view();
  }
}

/** By date text: a batch holds a few dozen distinct dates. */
const calendars = new Map<string, { month: number; dayOfWeek: number }>();
const MAX_CACHED_DATES = 4096;

/** Month 0-11 and ISO-less day of week 0 (Sunday) - 6 of a YYYY-MM-DD date, without a Date per row. */
export function calendarOf(isoDate: string): { month: number; dayOfWeek: number } {
  let calendar = calendars.get(isoDate);
  if (calendar === undefined) {
    calendar = computeCalendar(isoDate);
    if (calendars.size >= MAX_CACHED_DATES) calendars.clear();
    calendars.set(isoDate, calendar);
  }
  return calendar;
}

function computeCalendar(isoDate: string): { month: number; dayOfWeek: number } {
  const year = Number(isoDate.slice(0, 4));
  const month = Number(isoDate.slice(5, 7)) - 1;
  const day = Number(isoDate.slice(8, 10));
  const daysSinceEpoch = Math.floor(Date.UTC(year, month, day) / 86_400_000);
  // 1970-01-01 was a Thursday (4).
  return { month, dayOfWeek: (((daysSinceEpoch + 4) % 7) + 7) % 7 };
}
