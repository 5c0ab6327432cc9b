import { createHash } from 'node:crypto';
import { z } from 'zod';
import { GreenMlError } from '../errors';
import type { PartialInvoiceRow } from '../invoices/schema';
import { sortedClasses } from '../model/classes';
import { calendarOf, Dictionary, FOLD_SALT, GrowableColumn, TARGET_FOLDS } from '../model/columns';
import {
  chooseCodes,
  FEATURE_SCHEMA_VERSION,
  lowerBound,
  MAX_CATEGORY_CODES,
  MAX_NUMERIC_BINS,
  MIN_CATEGORY_ROWS,
  quantileEdges,
  TARGET_BINS,
  TARGET_SMOOTHING_ROWS,
  UNSEEN_CODE,
  type EncoderStateJson,
} from '../model/features';
import { fnv1a32 } from '../model/random';
import { MAX_FEATURES } from '../model/tree';
import { decodeTypedArray, encodeTypedArray } from '../model/typedArrays';
import { foldClassCounts, TargetPrior, writeTargetBins, type TargetStats } from '../model/targetEncoding';
import { DATE_PARTS, VAT_RATE_FEATURES, type DatePart, type FeatureDeclaration } from './manifest';
import { INVOICE_COLUMN_NAMES, type InvoiceColumnName } from './invoiceColumns';

/**
 * Feature encoding driven by a pipeline's declaration. It bins exactly as the single model's
 * encoder (shared/model/features.ts) does, column by column as declared: the VAT-rate declaration
 * produces the very same bins, so the legacy encoder state converts to this one (`fromLegacyState`)
 * and the forest code in shared/model trains and predicts on either unchanged.
 *
 * Layout: one feature per declared column (a code, a bin, a flag or a date part), in declaration
 * order, then the per-class target statistics of each high-cardinality column.
 *
 * Versioned per pipeline: `encodingVersion` hashes exactly what makes a model read a row
 * differently (the encoder algorithm and its constants, the label, the feature columns, their kinds,
 * parts and order) and nothing else (hyperparameters, thresholds, regions). A model stores its
 * declaration with its state, so editing the pipelines file never changes how an old model reads rows.
 */

/** Bump when this module would bin a row differently for the same declaration and state. */
export const ENCODING_ALGORITHM = 'declared-features/1';

export interface EncodingDeclaration {
  label: InvoiceColumnName;
  features: readonly FeatureDeclaration[];
}

const DATE_PART_BINS: Record<DatePart, number> = { month: 12, dayOfWeek: 7, dayOfMonth: 31 };

/** The encoding's identity: algorithm name plus a hash of everything that changes how rows read. */
export function encodingVersion(declaration: EncodingDeclaration): string {
  const canonical = JSON.stringify({
    algorithm: ENCODING_ALGORITHM,
    constants: [
      MIN_CATEGORY_ROWS,
      MAX_CATEGORY_CODES,
      MAX_NUMERIC_BINS,
      TARGET_BINS,
      TARGET_SMOOTHING_ROWS,
      TARGET_FOLDS,
      FOLD_SALT,
    ],
    label: declaration.label,
    features: declaration.features.map((f) =>
      f.kind === 'date-parts' ? [f.column, f.kind, f.parts] : [f.column, f.kind],
    ),
  });
  return `${ENCODING_ALGORITHM}:${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`;
}

export type EncodingComparison =
  | { kind: 'same'; version: string }
  | { kind: 'changed'; modelVersion: string; declaredVersion: string; changes: string[] };

/**
 * Whether a model trained under `model` reads rows as the current declaration would. A change means
 * the next retrain starts a new encoding (a full fit, never a warm start on the old encoder), while
 * the old champion keeps predicting with its own.
 */
export function compareEncoding(
  model: { encodingVersion: string; declaration: EncodingDeclaration },
  current: EncodingDeclaration,
): EncodingComparison {
  const declaredVersion = encodingVersion(current);
  if (model.encodingVersion === declaredVersion) return { kind: 'same', version: declaredVersion };
  const changes: string[] = [];
  if (model.declaration.label !== current.label) {
    changes.push(`label ${model.declaration.label} → ${current.label}`);
  }
  const describe = (f: FeatureDeclaration): string =>
    f.kind === 'date-parts' ? `${f.kind}(${f.parts.join(',')})` : f.kind;
  const before = new Map(model.declaration.features.map((f) => [f.column, describe(f)]));
  const after = new Map(current.features.map((f) => [f.column, describe(f)]));
  for (const [column, kind] of before) {
    const now = after.get(column);
    if (now === undefined) changes.push(`feature ${column} removed`);
    else if (now !== kind) changes.push(`feature ${column}: ${kind} → ${now}`);
  }
  for (const [column, kind] of after)
    if (!before.has(column)) changes.push(`feature ${column} added (${kind})`);
  const order = (features: readonly FeatureDeclaration[]): string =>
    features
      .map((f) => f.column)
      .filter((c) => before.has(c) && after.has(c))
      .join(',');
  if (changes.length === 0 && order(model.declaration.features) !== order(current.features)) {
    changes.push('features reordered');
  }
  if (changes.length === 0) changes.push('encoder algorithm or its constants changed');
  return { kind: 'changed', modelVersion: model.encodingVersion, declaredVersion, changes };
}

/** An encoder state that does not hold together, or a declaration a forest cannot read. */
export class FeatureEncodingError extends GreenMlError {
  constructor(message: string) {
    super('MODEL_INVALID', message);
  }
}

/** A row as far as encoding goes: the id (for target folds) and whatever columns it carries. */
export type EncodableRow = PartialInvoiceRow;

type CategoryColumn = { dictionary: Dictionary; ids: GrowableColumn<Uint32Array> };

/**
 * The declared columns of a chunk of rows, held column by column (dictionary ids, typed numbers),
 * so a training window costs bytes per row and not an object per row.
 */
export class DeclaredColumns {
  private readonly categories = new Map<InvoiceColumnName, CategoryColumn>();
  private readonly numbers = new Map<InvoiceColumnName, GrowableColumn<Float64Array>>();
  private readonly flags = new Map<InvoiceColumnName, GrowableColumn<Uint8Array>>();
  private readonly dateParts = new Map<InvoiceColumnName, Record<DatePart, GrowableColumn<Uint8Array>>>();
  private readonly foldColumn = new GrowableColumn((n) => new Uint8Array(n));
  readonly labelDictionary = new Dictionary();
  private readonly labelColumn = new GrowableColumn((n) => new Uint32Array(n));
  length = 0;

  constructor(readonly declaration: EncodingDeclaration) {
    for (const feature of declaration.features) {
      switch (feature.kind) {
        case 'categorical':
        case 'high-cardinality':
          this.categories.set(feature.column, {
            dictionary: new Dictionary(),
            ids: new GrowableColumn((n) => new Uint32Array(n)),
          });
          break;
        case 'numeric':
          this.numbers.set(feature.column, new GrowableColumn((n) => new Float64Array(n)));
          break;
        case 'boolean':
          this.flags.set(feature.column, new GrowableColumn((n) => new Uint8Array(n)));
          break;
        case 'date-parts':
          this.dateParts.set(feature.column, {
            month: new GrowableColumn((n) => new Uint8Array(n)),
            dayOfWeek: new GrowableColumn((n) => new Uint8Array(n)),
            dayOfMonth: new GrowableColumn((n) => new Uint8Array(n)),
          });
          break;
      }
    }
  }

  /** Adds a row; `labelled` rows also record their label's class key. */
  push(row: EncodableRow, labelled = false): void {
    for (const [column, { dictionary, ids }] of this.categories) {
      ids.push(dictionary.id(String(present(row, column))));
    }
    for (const [column, values] of this.numbers) values.push(present(row, column) as number);
    for (const [column, values] of this.flags) values.push(present(row, column) ? 1 : 0);
    for (const [column, parts] of this.dateParts) {
      const isoDate = present(row, column) as string;
      const { month, dayOfWeek } = calendarOf(isoDate);
      parts.month.push(month);
      parts.dayOfWeek.push(dayOfWeek);
      parts.dayOfMonth.push(Number(isoDate.slice(8, 10)) - 1);
    }
    this.foldColumn.push(fnv1a32(row.invoiceId, FOLD_SALT) % TARGET_FOLDS);
    if (labelled) {
      this.labelColumn.push(this.labelDictionary.id(String(present(row, this.declaration.label))));
    }
    this.length++;
  }

  get labelled(): boolean {
    return this.labelColumn.length === this.length;
  }
  get labelIds(): Uint32Array {
    return this.labelColumn.view();
  }
  get fold(): Uint8Array {
    return this.foldColumn.view();
  }
  category(column: InvoiceColumnName): { values: readonly string[]; ids: Uint32Array } {
    const found = this.categories.get(column) as CategoryColumn;
    return { values: found.dictionary.values, ids: found.ids.view() };
  }
  numeric(column: InvoiceColumnName): Float64Array {
    return (this.numbers.get(column) as GrowableColumn<Float64Array>).view();
  }
  flag(column: InvoiceColumnName): Uint8Array {
    return (this.flags.get(column) as GrowableColumn<Uint8Array>).view();
  }
  datePart(column: InvoiceColumnName, part: DatePart): Uint8Array {
    return (this.dateParts.get(column) as Record<DatePart, GrowableColumn<Uint8Array>>)[part].view();
  }
}

function present(row: EncodableRow, column: InvoiceColumnName): unknown {
  const value = row[column];
  if (value === undefined) throw new FeatureEncodingError(`row ${row.invoiceId} has no ${column} column`);
  return value;
}

export interface DeclaredMatrix {
  /** Row-major rows × features bins. */
  bins: Uint16Array;
  rows: number;
  features: number;
  /** Rows whose category the encoder did not know, per categorical column (a drift signal). */
  unseenRows: Partial<Record<InvoiceColumnName, number>>;
}

const categoryList = z.array(z.string()).max(MAX_CATEGORY_CODES);
const edgeList = z.array(z.number().finite()).max(MAX_NUMERIC_BINS - 1);
const columnName = z.enum(INVOICE_COLUMN_NAMES as [InvoiceColumnName, ...InvoiceColumnName[]]);
const featureDeclarationSchema = z.discriminatedUnion('kind', [
  z.strictObject({ column: columnName, kind: z.literal('categorical') }),
  z.strictObject({ column: columnName, kind: z.literal('high-cardinality') }),
  z.strictObject({ column: columnName, kind: z.literal('numeric') }),
  z.strictObject({
    column: columnName,
    kind: z.literal('date-parts'),
    parts: z.array(z.enum(DATE_PARTS)).min(1),
  }),
  z.strictObject({ column: columnName, kind: z.literal('boolean') }),
]);

export const DECLARED_ENCODER_STATE_SCHEMA = z.strictObject({
  encodingVersion: z.string(),
  declaration: z.strictObject({ label: columnName, features: z.array(featureDeclarationSchema).min(1) }),
  /** Category code = index + 1, per categorical or high-cardinality column. */
  categories: z.record(z.string(), categoryList),
  /** Bin of a number = how many edges are below it. */
  numericEdges: z.record(z.string(), edgeList),
  target: z.strictObject({
    classes: z.array(z.string()).min(1).max(255),
    priorCounts: z.array(z.number().int().nonnegative()),
    priorRows: z.number().int().positive(),
    columns: z.record(
      z.string(),
      z.strictObject({ values: z.array(z.string()), classCounts: z.string(), rows: z.string() }),
    ),
  }),
});
export type DeclaredEncoderState = z.output<typeof DECLARED_ENCODER_STATE_SCHEMA>;

type RawTarget = { values: string[]; classCounts: Uint32Array; rows: Uint32Array };

export class DeclaredFeatureEncoder {
  readonly version: string;
  readonly featureNames: readonly string[];
  readonly binCounts: Uint16Array;
  private readonly codeMaps = new Map<InvoiceColumnName, Map<string, number>>();
  private readonly target = new Map<InvoiceColumnName, TargetStats>();
  private readonly prior: TargetPrior;

  private constructor(
    readonly declaration: EncodingDeclaration,
    private readonly categories: ReadonlyMap<InvoiceColumnName, string[]>,
    private readonly numericEdges: ReadonlyMap<InvoiceColumnName, number[]>,
    readonly classes: readonly string[],
    private readonly priorCounts: readonly number[],
    private readonly priorRows: number,
    targets: ReadonlyMap<InvoiceColumnName, RawTarget>,
  ) {
    this.version = encodingVersion(declaration);
    const classCount = classes.length;
    if (priorCounts.length !== classCount) {
      throw new FeatureEncodingError('target priorCounts length differs from the class count');
    }
    this.prior = new TargetPrior(priorCounts, priorRows);
    const names: string[] = [];
    const binCounts: number[] = [];
    for (const feature of declaration.features) {
      switch (feature.kind) {
        case 'categorical':
        case 'high-cardinality': {
          const values = categories.get(feature.column);
          if (!values) throw new FeatureEncodingError(`no categories for ${feature.column}`);
          this.codeMaps.set(feature.column, new Map(values.map((v, i) => [v, i + 1])));
          names.push(feature.column);
          binCounts.push(values.length + 1);
          break;
        }
        case 'numeric': {
          const edges = numericEdges.get(feature.column);
          if (!edges) throw new FeatureEncodingError(`no bin edges for ${feature.column}`);
          for (let i = 1; i < edges.length; i++) {
            if (!(edges[i] > edges[i - 1]))
              throw new FeatureEncodingError(`${feature.column} edges are not increasing`);
          }
          names.push(feature.column);
          binCounts.push(edges.length + 1);
          break;
        }
        case 'boolean':
          names.push(feature.column);
          binCounts.push(2);
          break;
        case 'date-parts':
          for (const part of feature.parts) {
            names.push(`${feature.column}.${part}`);
            binCounts.push(DATE_PART_BINS[part]);
          }
          break;
      }
    }
    for (const feature of declaration.features) {
      if (feature.kind !== 'high-cardinality') continue;
      const raw = targets.get(feature.column);
      if (!raw) throw new FeatureEncodingError(`no target statistics for ${feature.column}`);
      if (
        raw.classCounts.length !== raw.values.length * classCount ||
        raw.rows.length !== raw.values.length
      ) {
        throw new FeatureEncodingError(`target statistics of ${feature.column} have inconsistent lengths`);
      }
      this.target.set(feature.column, this.prior.stats(raw.values, raw.classCounts, raw.rows));
      for (const cls of classes) {
        names.push(`${feature.column}:p(${cls})`);
        binCounts.push(TARGET_BINS);
      }
    }
    if (names.length > MAX_FEATURES) {
      throw new FeatureEncodingError(
        `the declaration makes ${names.length} features (at most ${MAX_FEATURES}): fewer high-cardinality columns or fewer classes`,
      );
    }
    this.featureNames = names;
    this.binCounts = Uint16Array.from(binCounts);
  }

  get featureCount(): number {
    return this.featureNames.length;
  }

  /**
   * Fits vocabularies, quantile edges and target statistics on labelled rows and returns the training
   * matrix with out-of-fold target statistics (a row never sees its own label through them).
   */
  static fit(
    train: DeclaredColumns,
    options: { shared?: boolean } = {},
  ): { encoder: DeclaredFeatureEncoder; matrix: DeclaredMatrix; labels: Uint8Array } {
    if (!train.labelled || train.length === 0) throw new FeatureEncodingError('fitting needs labelled rows');
    const declaration = train.declaration;
    const classes = sortedClasses(train.labelDictionary.values);
    const classCount = classes.length;
    const labelRank = Int32Array.from(train.labelDictionary.values, (v) => classes.indexOf(v));
    const labelIds = train.labelIds;

    const categories = new Map<InvoiceColumnName, string[]>();
    const targets = new Map<InvoiceColumnName, RawTarget>();
    const numericEdges = new Map<InvoiceColumnName, number[]>();
    for (const feature of declaration.features) {
      if (feature.kind === 'numeric') {
        numericEdges.set(feature.column, quantileEdges(train.numeric(feature.column)));
        continue;
      }
      if (feature.kind !== 'categorical' && feature.kind !== 'high-cardinality') continue;
      const { values, ids } = train.category(feature.column);
      const classCounts = new Uint32Array(values.length * classCount);
      const rows = new Uint32Array(values.length);
      for (let r = 0; r < ids.length; r++) {
        classCounts[ids[r] * classCount + labelRank[labelIds[r]]]++;
        rows[ids[r]]++;
      }
      categories.set(
        feature.column,
        chooseCodes(values, classCounts, rows, classCount, MAX_CATEGORY_CODES, new Set()),
      );
      if (feature.kind === 'high-cardinality')
        targets.set(feature.column, { values: [...values], classCounts, rows });
    }
    const priorCounts = new Array<number>(classCount).fill(0);
    for (let r = 0; r < labelIds.length; r++) priorCounts[labelRank[labelIds[r]]]++;
    const encoder = new DeclaredFeatureEncoder(
      declaration,
      categories,
      numericEdges,
      classes,
      priorCounts,
      labelIds.length,
      targets,
    );
    const labels = Uint8Array.from(labelIds, (id) => labelRank[id]);
    return { encoder, matrix: encoder.encode(train, { outOfFold: true, shared: options.shared }), labels };
  }

  /**
   * Encodes rows to bins. `outOfFold` (training only) requires that these very rows were counted in
   * the target statistics: each row's statistics then leave out its own fold.
   */
  encode(columns: DeclaredColumns, options: { outOfFold?: boolean; shared?: boolean } = {}): DeclaredMatrix {
    if (columns.declaration !== this.declaration && encodingVersion(columns.declaration) !== this.version) {
      throw new FeatureEncodingError('rows were collected for another declaration than this encoder reads');
    }
    const rows = columns.length;
    const features = this.featureCount;
    const bytes = rows * features * Uint16Array.BYTES_PER_ELEMENT;
    const bins = new Uint16Array(options.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
    const unseenRows: Partial<Record<InvoiceColumnName, number>> = {};
    let f = 0;
    for (const feature of this.declaration.features) {
      switch (feature.kind) {
        case 'categorical':
        case 'high-cardinality': {
          const { values, ids } = columns.category(feature.column);
          const codeMap = this.codeMaps.get(feature.column) as Map<string, number>;
          const targetIndex = this.target.get(feature.column)?.index;
          const codes = Uint16Array.from(values, (v) => codeMap.get(v) ?? UNSEEN_CODE);
          const known = Uint8Array.from(values, (v) => (codeMap.has(v) || targetIndex?.has(v) ? 1 : 0));
          let unseen = 0;
          for (let r = 0; r < rows; r++) {
            bins[r * features + f] = codes[ids[r]];
            unseen += 1 - known[ids[r]];
          }
          unseenRows[feature.column] = unseen;
          f++;
          break;
        }
        case 'numeric': {
          const edges = Float64Array.from(this.numericEdges.get(feature.column) as number[]);
          const values = columns.numeric(feature.column);
          for (let r = 0; r < rows; r++) bins[r * features + f] = lowerBound(edges, values[r]);
          f++;
          break;
        }
        case 'boolean': {
          const values = columns.flag(feature.column);
          for (let r = 0; r < rows; r++) bins[r * features + f] = values[r];
          f++;
          break;
        }
        case 'date-parts':
          for (const part of feature.parts) {
            const values = columns.datePart(feature.column, part);
            for (let r = 0; r < rows; r++) bins[r * features + f] = values[r];
            f++;
          }
          break;
      }
    }
    const classCount = this.classes.length;
    for (const feature of this.declaration.features) {
      if (feature.kind !== 'high-cardinality') continue;
      const stats = this.target.get(feature.column) as TargetStats;
      const { values, ids } = columns.category(feature.column);
      const foldCounts = options.outOfFold ? this.foldCounts(columns, feature.column) : undefined;
      writeTargetBins(
        { bins, rows, features },
        f,
        { ids, dictionary: values, folds: columns.fold },
        stats,
        this.prior,
        foldCounts,
      );
      f += classCount;
    }
    return { bins, rows, features, unseenRows };
  }

  /** Per dictionary value and fold: counts of each class, then the row count. */
  private foldCounts(columns: DeclaredColumns, column: InvoiceColumnName): Uint32Array {
    if (!columns.labelled) throw new FeatureEncodingError('out-of-fold encoding needs labelled rows');
    const { values, ids } = columns.category(column);
    return foldClassCounts(
      {
        ids,
        dictionarySize: values.length,
        labelIds: columns.labelIds,
        labelRank: Int32Array.from(columns.labelDictionary.values, (v) => this.classes.indexOf(v)),
        folds: columns.fold,
      },
      this.classes.length,
    );
  }

  toJSON(): DeclaredEncoderState {
    const columns: DeclaredEncoderState['target']['columns'] = {};
    for (const [column, stats] of this.target) {
      columns[column] = {
        values: stats.values,
        classCounts: encodeTypedArray(stats.classCounts),
        rows: encodeTypedArray(stats.rows),
      };
    }
    return {
      encodingVersion: this.version,
      declaration: {
        label: this.declaration.label,
        features: this.declaration.features.map((f) =>
          f.kind === 'date-parts' ? { ...f, parts: [...f.parts] } : { ...f },
        ),
      },
      categories: Object.fromEntries(this.categories),
      numericEdges: Object.fromEntries(this.numericEdges),
      target: {
        classes: [...this.classes],
        priorCounts: [...this.priorCounts],
        priorRows: this.priorRows,
        columns,
      },
    };
  }

  /**
   * Rebuilds an encoder from its stored state: the model's own declaration, not the current pipelines
   * file. Throws when the stored version is not what this code computes for that declaration (an
   * artifact from an encoder that bins differently, or a hand edit).
   */
  static fromJSON(json: unknown): DeclaredFeatureEncoder {
    const parsed = DECLARED_ENCODER_STATE_SCHEMA.safeParse(json);
    if (!parsed.success) {
      throw new FeatureEncodingError(
        `invalid encoder state: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      );
    }
    const state = parsed.data;
    const declaration: EncodingDeclaration = state.declaration;
    const expected = encodingVersion(declaration);
    if (state.encodingVersion !== expected) {
      throw new FeatureEncodingError(
        `encoding ${state.encodingVersion} is not what this code reads for its declaration (${expected}): retrain the model`,
      );
    }
    return DeclaredFeatureEncoder.fromStoredParts(declaration, state, state.target.columns);
  }

  /**
   * Adapter for models trained before pipelines were declared: the single model's encoder state
   * (`invoice-features/1`) read as the VAT-rate declaration, which bins every row identically.
   */
  static fromLegacyState(state: EncoderStateJson): DeclaredFeatureEncoder {
    if (
      state.schemaVersion !== FEATURE_SCHEMA_VERSION ||
      state.target.smoothingRows !== TARGET_SMOOTHING_ROWS
    ) {
      throw new FeatureEncodingError(
        `legacy encoder ${state.schemaVersion} (smoothing ${state.target.smoothingRows}) is not ${FEATURE_SCHEMA_VERSION}`,
      );
    }
    return DeclaredFeatureEncoder.fromStoredParts(LEGACY_DECLARATION, state, state.target.fields);
  }

  /** Rebuilds an encoder from stored parts; the declared and the legacy state store them alike. */
  private static fromStoredParts(
    declaration: EncodingDeclaration,
    state: {
      categories: Record<string, string[]>;
      numericEdges: Record<string, number[]>;
      target: { classes: string[]; priorCounts: number[]; priorRows: number };
    },
    targetColumns: Record<string, { values: string[]; classCounts: string; rows: string }>,
  ): DeclaredFeatureEncoder {
    const targets = new Map<InvoiceColumnName, RawTarget>();
    for (const [column, raw] of Object.entries(targetColumns)) {
      targets.set(column as InvoiceColumnName, {
        values: raw.values,
        classCounts: decodeTypedArray(raw.classCounts, Uint32Array, `${column} classCounts`),
        rows: decodeTypedArray(raw.rows, Uint32Array, `${column} rows`),
      });
    }
    return new DeclaredFeatureEncoder(
      declaration,
      new Map(Object.entries(state.categories) as [InvoiceColumnName, string[]][]),
      new Map(Object.entries(state.numericEdges) as [InvoiceColumnName, number[]][]),
      state.target.classes,
      state.target.priorCounts,
      state.target.priorRows,
      targets,
    );
  }
}

/** What the single-model encoder (shared/model/features.ts) reads, as a declaration. */
export const LEGACY_DECLARATION: EncodingDeclaration = {
  label: 'vatRatePercent',
  features: VAT_RATE_FEATURES,
};
