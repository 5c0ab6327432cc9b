import { z } from 'zod';
import { sortedClasses } from './classes';
import { CATEGORICAL_FIELDS, InvoiceColumns, type CategoricalField, type FeatureRow } from './columns';
import { decodeTypedArray, encodeTypedArray } from './typedArrays';
import {
  foldClassCounts,
  TARGET_BINS,
  TARGET_SMOOTHING_ROWS,
  TargetPrior,
  writeTargetBins,
  type TargetStats,
} from './targetEncoding';

/**
 * The feature encoding shared by trainer, evaluator and model API. Every feature is encoded
 * straight to a small integer bin (< 512), which is what the histogram forest splits on, so the
 * encoder *is* the binning and a model needs nothing else to read raw invoices.
 *
 * Bump the version whenever a change would make an old model read a row differently.
 */
export const FEATURE_SCHEMA_VERSION = 'invoice-features/1';

/** Category code for a value never seen in training, or seen too rarely to get its own code. */
export const UNSEEN_CODE = 0;
/** Codes 1..511, so a categorical feature has at most 512 bins. */
export const MAX_CATEGORY_CODES = 511;
/** A category needs this many training rows for its own code; rarer ones share UNSEEN_CODE, which
 * is exactly what the trees learn to treat as "unknown supplier", so unseen values at prediction
 * time land in a bin the trees have seen. */
export const MIN_CATEGORY_ROWS = 3;
export const MAX_NUMERIC_BINS = 256;
export { TARGET_BINS, TARGET_SMOOTHING_ROWS, probabilityBin } from './targetEncoding';

/** High-cardinality fields whose per-class frequencies are features (supplier and account carry the VAT rule). */
export const TARGET_ENCODED_FIELDS = ['supplierId', 'accountCode'] as const;
export type TargetEncodedField = (typeof TARGET_ENCODED_FIELDS)[number];
const NUMERIC_FIELDS = ['amountNet', 'lineCount'] as const;
type NumericField = (typeof NUMERIC_FIELDS)[number];

const categoryList = z.array(z.string()).max(MAX_CATEGORY_CODES);
const edgeList = z.array(z.number().finite()).max(MAX_NUMERIC_BINS - 1);

export const ENCODER_STATE_SCHEMA = z.strictObject({
  schemaVersion: z.string(),
  /** Category code = index + 1. */
  categories: z.strictObject({
    supplierId: categoryList,
    supplierCountry: categoryList,
    receiverId: categoryList,
    accountCode: categoryList,
    currency: categoryList,
  }),
  /** Bin of a number = how many edges are below it. */
  numericEdges: z.strictObject({ amountNet: edgeList, lineCount: edgeList }),
  target: z.strictObject({
    classes: z.array(z.string()).min(1).max(64),
    smoothingRows: z.number().positive(),
    priorCounts: z.array(z.number().int().nonnegative()),
    priorRows: z.number().int().positive(),
    fields: z.strictObject({
      supplierId: z.strictObject({
        values: z.array(z.string()),
        classCounts: z.string(),
        rows: z.string(),
      }),
      accountCode: z.strictObject({
        values: z.array(z.string()),
        classCounts: z.string(),
        rows: z.string(),
      }),
    }),
  }),
});
export type EncoderStateJson = z.output<typeof ENCODER_STATE_SCHEMA>;

export interface EncodedMatrix {
  /** Row-major rows × features bins. */
  bins: Uint16Array;
  rows: number;
  features: number;
  /** Rows whose category the encoder did not know, per field (a drift signal). */
  unseenRows: Record<CategoricalField, number>;
}

/** The encoder state is inconsistent (only reachable through a hand-edited or corrupted artifact). */
export class EncoderStateError extends Error {}

export class FeatureEncoder {
  private readonly codeMaps: Record<CategoricalField, Map<string, number>>;
  private readonly target: Record<TargetEncodedField, TargetStats>;
  private readonly targetClasses: string[];
  private readonly priorCounts: number[];
  private readonly priorRows: number;
  private readonly prior: TargetPrior;
  readonly featureNames: readonly string[];
  readonly binCounts: Uint16Array;
  private readonly numericEdgeArrays: Record<NumericField, Float64Array>;

  private constructor(
    private readonly categories: Record<CategoricalField, string[]>,
    private readonly numericEdges: Record<NumericField, number[]>,
    target: {
      classes: string[];
      priorCounts: number[];
      priorRows: number;
      fields: Record<TargetEncodedField, { values: string[]; classCounts: Uint32Array; rows: Uint32Array }>;
    },
  ) {
    this.numericEdgeArrays = {
      amountNet: Float64Array.from(numericEdges.amountNet),
      lineCount: Float64Array.from(numericEdges.lineCount),
    };
    this.codeMaps = Object.fromEntries(
      CATEGORICAL_FIELDS.map((f) => [f, new Map(categories[f].map((v, i) => [v, i + 1]))]),
    ) as Record<CategoricalField, Map<string, number>>;
    this.targetClasses = target.classes;
    this.priorCounts = target.priorCounts;
    this.priorRows = target.priorRows;
    const classCount = target.classes.length;
    if (target.priorCounts.length !== classCount) {
      throw new EncoderStateError('target priorCounts length differs from the class count');
    }
    this.prior = new TargetPrior(target.priorCounts, target.priorRows);
    this.target = {} as Record<TargetEncodedField, TargetStats>;
    for (const field of TARGET_ENCODED_FIELDS) {
      const { values, classCounts, rows } = target.fields[field];
      if (classCounts.length !== values.length * classCount || rows.length !== values.length) {
        throw new EncoderStateError(`target statistics of ${field} have inconsistent lengths`);
      }
      this.target[field] = this.prior.stats(values, classCounts, rows);
    }
    const names: string[] = [...CATEGORICAL_FIELDS, ...NUMERIC_FIELDS, 'reverseCharge', 'month', 'dayOfWeek'];
    const binCounts: number[] = [
      ...CATEGORICAL_FIELDS.map((f) => categories[f].length + 1),
      ...NUMERIC_FIELDS.map((f) => numericEdges[f].length + 1),
      2,
      12,
      7,
    ];
    for (const field of TARGET_ENCODED_FIELDS) {
      for (const cls of target.classes) {
        names.push(`${field}:p(${cls})`);
        binCounts.push(TARGET_BINS);
      }
    }
    this.featureNames = names;
    this.binCounts = Uint16Array.from(binCounts);
  }

  get featureCount(): number {
    return this.featureNames.length;
  }

  /**
   * Fits vocabularies, quantile edges and target statistics on labelled training rows, and returns
   * the training matrix encoded with out-of-fold target statistics (a row never sees its own label
   * through them, which would otherwise let the trees memorise rare suppliers).
   */
  static fit(
    train: InvoiceColumns,
    options: { shared?: boolean } = {},
  ): {
    encoder: FeatureEncoder;
    matrix: EncodedMatrix;
  } {
    const classes = sortedClasses(train.labelDictionary.values);
    const encoder = FeatureEncoder.build(train, classes, undefined);
    return { encoder, matrix: encoder.encodeColumns(train, { outOfFold: true, shared: options.shared }) };
  }

  /**
   * Warm start: the same features and bins (so every old tree reads rows exactly as before), with
   * categories new in `train` appended as new codes and target statistics updated with its rows.
   * Classes new in `train` get no target feature of their own (the feature layout is fixed).
   */
  extend(
    train: InvoiceColumns,
    options: { shared?: boolean } = {},
  ): {
    encoder: FeatureEncoder;
    matrix: EncodedMatrix;
  } {
    const encoder = FeatureEncoder.build(train, this.targetClasses, this);
    return { encoder, matrix: encoder.encodeColumns(train, { outOfFold: true, shared: options.shared }) };
  }

  private static build(
    train: InvoiceColumns,
    targetClasses: string[],
    base: FeatureEncoder | undefined,
  ): FeatureEncoder {
    if (!train.labelled) throw new EncoderStateError('fitting needs labelled rows');
    const labelClasses = sortedClasses(train.labelDictionary.values);
    const classCount = labelClasses.length;
    // Label dictionary id -> index among the sorted classes of these rows.
    const labelRank = Int32Array.from(train.labelDictionary.values, (v) => labelClasses.indexOf(v));
    const labels = train.labelIds;

    const categories = {} as Record<CategoricalField, string[]>;
    const perValue = {} as Record<CategoricalField, { classCounts: Uint32Array; rows: Uint32Array }>;
    for (const field of CATEGORICAL_FIELDS) {
      const dictionary = train.dictionaries[field];
      const ids = train.categoryIdsOf(field);
      const classCounts = new Uint32Array(dictionary.values.length * classCount);
      const rows = new Uint32Array(dictionary.values.length);
      for (let r = 0; r < ids.length; r++) {
        classCounts[ids[r] * classCount + labelRank[labels[r]]]++;
        rows[ids[r]]++;
      }
      perValue[field] = { classCounts, rows };
      const existing = base ? base.categories[field] : [];
      const known = new Set(existing);
      const added = chooseCodes(
        dictionary.values,
        classCounts,
        rows,
        classCount,
        MAX_CATEGORY_CODES - existing.length,
        known,
      );
      categories[field] = [...existing, ...added];
    }

    const numericEdges = base
      ? base.numericEdges
      : { amountNet: quantileEdges(train.amountNet), lineCount: quantileEdges(train.lineCount) };

    // Target statistics over the fixed target classes; rows of other classes count only as rows.
    const targetRank = Int32Array.from(labelClasses, (c) => targetClasses.indexOf(c));
    const targetCount = targetClasses.length;
    const priorCounts = base ? [...base.priorCounts] : new Array<number>(targetCount).fill(0);
    let priorRows = base ? base.priorRows : 0;
    for (let r = 0; r < labels.length; r++) {
      const k = targetRank[labelRank[labels[r]]];
      if (k >= 0) priorCounts[k]++;
      priorRows++;
    }
    const fields = {} as Record<
      TargetEncodedField,
      { values: string[]; classCounts: Uint32Array; rows: Uint32Array }
    >;
    for (const field of TARGET_ENCODED_FIELDS) {
      const previous = base?.target[field];
      const values = previous ? [...previous.values] : [];
      const index = new Map(previous?.index ?? []);
      const newValues = train.dictionaries[field].values;
      for (const value of newValues) {
        if (!index.has(value)) {
          index.set(value, values.length);
          values.push(value);
        }
      }
      const classCounts = new Uint32Array(values.length * targetCount);
      const rows = new Uint32Array(values.length);
      if (previous) {
        classCounts.set(previous.classCounts);
        rows.set(previous.rows);
      }
      const { classCounts: newCounts, rows: newRows } = perValue[field];
      for (let d = 0; d < newValues.length; d++) {
        const t = index.get(newValues[d]) as number;
        rows[t] += newRows[d];
        for (let c = 0; c < classCount; c++) {
          const k = targetRank[c];
          if (k >= 0) classCounts[t * targetCount + k] += newCounts[d * classCount + c];
        }
      }
      fields[field] = { values, classCounts, rows };
    }
    return new FeatureEncoder(categories, numericEdges, {
      classes: targetClasses,
      priorCounts,
      priorRows,
      fields,
    });
  }

  /**
   * Encodes rows to bins. `outOfFold` (training only) requires that these very rows were counted in
   * the target statistics: each row's statistics then leave out its own fold.
   */
  encodeColumns(
    columns: InvoiceColumns,
    options: { outOfFold?: boolean; shared?: boolean } = {},
  ): EncodedMatrix {
    const rows = columns.length;
    const features = this.featureCount;
    const bytes = rows * features * Uint16Array.BYTES_PER_ELEMENT;
    const bins = new Uint16Array(options.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
    const unseenRows = {} as Record<CategoricalField, number>;

    CATEGORICAL_FIELDS.forEach((field, f) => {
      const dictionary = columns.dictionaries[field].values;
      const codeMap = this.codeMaps[field];
      const targetIndex = (this.target as Partial<Record<CategoricalField, TargetStats>>)[field]?.index;
      // Plain loops: TypedArray.from with a mapping function is a slow generic builtin, and for the
      // model API's 100-row chunks this per-chunk setup used to cost more than the rows.
      const codes = new Uint16Array(dictionary.length);
      const known = new Uint8Array(dictionary.length);
      for (let d = 0; d < dictionary.length; d++) {
        const code = codeMap.get(dictionary[d]);
        codes[d] = code ?? UNSEEN_CODE;
        known[d] = code !== undefined || targetIndex?.has(dictionary[d]) ? 1 : 0;
      }
      const ids = columns.categoryIdsOf(field);
      let unseen = 0;
      for (let r = 0; r < rows; r++) {
        bins[r * features + f] = codes[ids[r]];
        unseen += 1 - known[ids[r]];
      }
      unseenRows[field] = unseen;
    });

    let f = CATEGORICAL_FIELDS.length;
    for (const field of NUMERIC_FIELDS) {
      const edges = this.numericEdgeArrays[field];
      const values = columns[field];
      for (let r = 0; r < rows; r++) bins[r * features + f] = lowerBound(edges, values[r]);
      f++;
    }
    for (const column of [columns.reverseCharge, columns.month, columns.dayOfWeek]) {
      for (let r = 0; r < rows; r++) bins[r * features + f] = column[r];
      f++;
    }

    const classCount = this.targetClasses.length;
    for (const field of TARGET_ENCODED_FIELDS) {
      const stats = this.target[field];
      const foldCounts = options.outOfFold ? this.foldCounts(columns, field) : undefined;
      writeTargetBins(
        { bins, rows, features },
        f,
        {
          ids: columns.categoryIdsOf(field),
          dictionary: columns.dictionaries[field].values,
          folds: columns.fold,
        },
        stats,
        this.prior,
        foldCounts,
      );
      f += classCount;
    }
    return { bins, rows, features, unseenRows };
  }

  /** Per dictionary value and fold: counts of each target class, then the row count. */
  private foldCounts(columns: InvoiceColumns, field: TargetEncodedField): Uint32Array {
    return foldClassCounts(
      {
        ids: columns.categoryIdsOf(field),
        dictionarySize: columns.dictionaries[field].values.length,
        labelIds: columns.labelIds,
        labelRank: Int32Array.from(columns.labelDictionary.values, (v) => this.targetClasses.indexOf(v)),
        folds: columns.fold,
      },
      this.targetClasses.length,
    );
  }

  toJSON(): EncoderStateJson {
    const fields = {} as EncoderStateJson['target']['fields'];
    for (const field of TARGET_ENCODED_FIELDS) {
      const stats = this.target[field];
      fields[field] = {
        values: stats.values,
        classCounts: encodeTypedArray(stats.classCounts),
        rows: encodeTypedArray(stats.rows),
      };
    }
    return {
      schemaVersion: FEATURE_SCHEMA_VERSION,
      categories: this.categories,
      numericEdges: this.numericEdges,
      target: {
        classes: this.targetClasses,
        smoothingRows: TARGET_SMOOTHING_ROWS,
        priorCounts: this.priorCounts,
        priorRows: this.priorRows,
        fields,
      },
    };
  }

  /** Rebuilds an encoder from its JSON; throws EncoderStateError when the parts disagree. */
  static fromJSON(state: EncoderStateJson): FeatureEncoder {
    if (state.schemaVersion !== FEATURE_SCHEMA_VERSION) {
      throw new EncoderStateError(
        `feature schema ${state.schemaVersion} is not ${FEATURE_SCHEMA_VERSION} (retrain the model)`,
      );
    }
    if (state.target.smoothingRows !== TARGET_SMOOTHING_ROWS) {
      throw new EncoderStateError(
        `target smoothing ${state.target.smoothingRows} is not ${TARGET_SMOOTHING_ROWS}`,
      );
    }
    for (const field of NUMERIC_FIELDS) {
      const edges = state.numericEdges[field];
      for (let i = 1; i < edges.length; i++) {
        if (!(edges[i] > edges[i - 1])) throw new EncoderStateError(`${field} edges are not increasing`);
      }
    }
    const fields = {} as Record<
      TargetEncodedField,
      { values: string[]; classCounts: Uint32Array; rows: Uint32Array }
    >;
    for (const field of TARGET_ENCODED_FIELDS) {
      const json = state.target.fields[field];
      fields[field] = {
        values: json.values,
        classCounts: decodeTypedArray(json.classCounts, Uint32Array, `${field} classCounts`),
        rows: decodeTypedArray(json.rows, Uint32Array, `${field} rows`),
      };
    }
    return new FeatureEncoder(
      state.categories,
      { amountNet: state.numericEdges.amountNet, lineCount: state.numericEdges.lineCount },
      {
        classes: state.target.classes,
        priorCounts: state.target.priorCounts,
        priorRows: state.target.priorRows,
        fields,
      },
    );
  }
}

/** Index of the first edge >= value, i.e. how many edges lie below it. */
export function lowerBound(edges: Float64Array, value: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Up to MAX_NUMERIC_BINS - 1 distinct quantile cut points, so each bin holds about as many rows. */
export function quantileEdges(values: Float64Array): number[] {
  if (values.length === 0) return [];
  const sorted = Float64Array.from(values).sort();
  const edges: number[] = [];
  for (let q = 1; q < MAX_NUMERIC_BINS; q++) {
    const edge = sorted[Math.min(sorted.length - 1, Math.floor((q * sorted.length) / MAX_NUMERIC_BINS))];
    if (edges.length === 0 || edge > edges[edges.length - 1]) edges.push(edge);
  }
  return edges;
}

/**
 * Picks up to `room` values with at least MIN_CATEGORY_ROWS rows (most frequent first), then orders
 * them by dominant class so values that share a VAT class get adjacent codes: an ordinal split on
 * the code can then carve out a class in one or two cuts instead of dozens.
 */
export function chooseCodes(
  values: readonly string[],
  classCounts: Uint32Array,
  rows: Uint32Array,
  classCount: number,
  room: number,
  known: ReadonlySet<string>,
): string[] {
  if (room <= 0) return [];
  const candidates: { value: string; rows: number; dominant: number; share: number }[] = [];
  for (let d = 0; d < values.length; d++) {
    if (rows[d] < MIN_CATEGORY_ROWS || known.has(values[d])) continue;
    let dominant = 0;
    for (let k = 1; k < classCount; k++) {
      if (classCounts[d * classCount + k] > classCounts[d * classCount + dominant]) dominant = k;
    }
    candidates.push({
      value: values[d],
      rows: rows[d],
      dominant,
      share: classCounts[d * classCount + dominant] / rows[d],
    });
  }
  const byText = (a: { value: string }, b: { value: string }): number =>
    a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
  candidates.sort((a, b) => b.rows - a.rows || byText(a, b));
  return candidates
    .slice(0, room)
    .sort((a, b) => a.dominant - b.dominant || b.share - a.share || byText(a, b))
    .map((c) => c.value);
}

/** Encodes feature rows (no labels needed) for prediction. */
export function encodeRows(encoder: FeatureEncoder, rows: Iterable<FeatureRow>): EncodedMatrix {
  const columns = new InvoiceColumns(Array.isArray(rows) ? rows.length : undefined);
  for (const row of rows) columns.push(row);
  return encoder.encodeColumns(columns);
}
