import { loadSettings } from '../../../shared/config';
import { generateWeek, type GeneratorOptions } from '../../../shared/invoices/generator';
import type { InvoiceRow } from '../../../shared/invoices/schema';
import { InvoiceColumns } from '../../../shared/model/columns';
import { FeatureEncoder, UNSEEN_CODE } from '../../../shared/model/features';
import { predictClasses, trainForest } from '../../../shared/model/randomForest';
import {
  compareEncoding,
  DeclaredColumns,
  DeclaredFeatureEncoder,
  encodingVersion,
  FeatureEncodingError,
  LEGACY_DECLARATION,
  type EncodingDeclaration,
} from '../../../shared/pipelines/featureEncoding';
import {
  loadPipelineManifest,
  type FeatureDeclaration,
  type PipelineDefinition,
} from '../../../shared/pipelines/manifest';

const settings = loadSettings({ DataStorage: 'UseDevelopmentStorage=true' });
const manifest = loadPipelineManifest({
  ...settings,
  PIPELINES_FILE: `${__dirname}/../../../pipelines.sample.json`,
});
const [VAT, ACCOUNT] = manifest.pipelines as [PipelineDefinition, PipelineDefinition];

const OPTIONS: GeneratorOptions = { scenario: 'stable', weeks: 4, rowsPerWeek: 1500, seed: 11 };
const week = (index: number): InvoiceRow[] => [...generateWeek(OPTIONS, index)];
const TRAIN = [...week(0), ...week(1)];
const LATER = week(3);

function declared(
  declaration: EncodingDeclaration,
  rows: readonly InvoiceRow[],
  labelled = true,
): DeclaredColumns {
  const columns = new DeclaredColumns(declaration);
  for (const row of rows) columns.push(row, labelled);
  return columns;
}

function legacy(rows: readonly InvoiceRow[]): InvoiceColumns {
  const columns = new InvoiceColumns();
  for (const row of rows) columns.pushLabelled(row);
  return columns;
}

describe('declared feature encoding', () => {
  it('the vat-rate declaration bins every row exactly as the single-model encoder, and reads its stored state', () => {
    const old = FeatureEncoder.fit(legacy(TRAIN));
    const fresh = DeclaredFeatureEncoder.fit(declared(VAT, TRAIN));
    expect(fresh.encoder.featureNames.length).toBe(old.encoder.featureCount);
    expect(Array.from(fresh.encoder.binCounts)).toEqual(Array.from(old.encoder.binCounts));
    expect(Buffer.from(fresh.matrix.bins.buffer).equals(Buffer.from(old.matrix.bins.buffer))).toBe(true);

    const oldLater = old.encoder.encodeColumns(legacy(LATER));
    const freshLater = fresh.encoder.encode(declared(VAT, LATER, false));
    expect(Buffer.from(freshLater.bins.buffer).equals(Buffer.from(oldLater.bins.buffer))).toBe(true);
    expect(freshLater.unseenRows).toEqual(oldLater.unseenRows);

    // A model stored before pipelines existed keeps predicting through the adapter.
    const adapted = DeclaredFeatureEncoder.fromLegacyState(JSON.parse(JSON.stringify(old.encoder.toJSON())));
    expect(adapted.version).toBe(encodingVersion(LEGACY_DECLARATION));
    expect(adapted.version).toBe(fresh.encoder.version);
    const adaptedLater = adapted.encode(declared(LEGACY_DECLARATION, LATER, false));
    expect(Buffer.from(adaptedLater.bins.buffer).equals(Buffer.from(oldLater.bins.buffer))).toBe(true);
  });

  it('round-trips through JSON: the restored encoder bins new rows identically', () => {
    const { encoder } = DeclaredFeatureEncoder.fit(declared(ACCOUNT, TRAIN));
    const restored = DeclaredFeatureEncoder.fromJSON(JSON.parse(JSON.stringify(encoder.toJSON())));
    expect(restored.version).toBe(encoder.version);
    expect(restored.featureNames).toEqual(encoder.featureNames);
    const before = encoder.encode(declared(ACCOUNT, LATER, false));
    const after = restored.encode(declared(ACCOUNT, LATER, false));
    expect(after.rows).toBe(LATER.length);
    expect(Buffer.from(after.bins.buffer).equals(Buffer.from(before.bins.buffer))).toBe(true);
    // account-code reads its own columns: the ledger account is the label, never a feature.
    expect(encoder.featureNames).not.toContain('accountCode');
    expect(encoder.featureNames).toContain(`receiverId:p(${encoder.classes[0]})`);
    expect(encoder.classes.length).toBeGreaterThan(10);
  });

  it('gives unseen categories the unseen code and the prior, and counts them', () => {
    const { encoder } = DeclaredFeatureEncoder.fit(declared(ACCOUNT, TRAIN));
    const known = TRAIN[0];
    const stranger = {
      ...known,
      invoiceId: 'INV-NEW-1',
      supplierId: 'SUP-NEVER-SEEN',
      receiverId: 'REC-NEW',
    };
    const encoded = encoder.encode(declared(ACCOUNT, [known, stranger], false));
    const at = (row: number, name: string): number =>
      encoded.bins[row * encoded.features + encoder.featureNames.indexOf(name)];
    expect(at(1, 'supplierId')).toBe(UNSEEN_CODE);
    expect(at(1, 'receiverId')).toBe(UNSEEN_CODE);
    expect(at(0, 'supplierId')).not.toBe(UNSEEN_CODE);
    expect(encoded.unseenRows).toMatchObject({ supplierId: 1, receiverId: 1, currency: 0 });
    // Both unknown high-cardinality values fall back to the same prior per class.
    for (const cls of encoder.classes) {
      expect(at(1, `supplierId:p(${cls})`)).toBe(at(1, `receiverId:p(${cls})`));
    }
    // Columns the stranger shares with a known row still encode like that row.
    expect(at(1, 'currency')).toBe(at(0, 'currency'));
    expect(at(1, 'issuedAt.month')).toBe(at(0, 'issuedAt.month'));
  });

  it('the version follows what changes how a row is read, and nothing else', () => {
    const base = encodingVersion(ACCOUNT);
    // Hyperparameters, thresholds, regions and names do not change how rows are read.
    expect(
      encodingVersion({
        ...ACCOUNT,
        forest: { ...ACCOUNT.forest, trees: 7 },
        name: 'other',
      } as PipelineDefinition),
    ).toBe(base);
    const variants: [string, EncodingDeclaration][] = [
      [
        'kind',
        {
          ...ACCOUNT,
          features: ACCOUNT.features.map((f) =>
            f.column === 'receiverId' ? { column: 'receiverId', kind: 'categorical' } : f,
          ),
        },
      ],
      [
        'parts',
        {
          ...ACCOUNT,
          features: ACCOUNT.features.map((f) => (f.kind === 'date-parts' ? { ...f, parts: ['month'] } : f)),
        },
      ],
      ['order', { ...ACCOUNT, features: [...ACCOUNT.features].reverse() }],
      ['dropped', { ...ACCOUNT, features: ACCOUNT.features.filter((f) => f.column !== 'lineCount') }],
      ['label', { label: 'currency', features: ACCOUNT.features.filter((f) => f.column !== 'currency') }],
    ];
    const versions = new Set([base, ...variants.map(([, d]) => encodingVersion(d))]);
    expect(versions.size).toBe(variants.length + 1);
  });

  it('detects a version bump against a stored model and says what changed; the old model keeps its encoding', () => {
    const { encoder } = DeclaredFeatureEncoder.fit(declared(ACCOUNT, TRAIN));
    const stored = JSON.parse(JSON.stringify(encoder.toJSON())) as ReturnType<typeof encoder.toJSON>;
    expect(compareEncoding(stored, ACCOUNT)).toEqual({ kind: 'same', version: encoder.version });

    const edited: EncodingDeclaration = {
      label: 'accountCode',
      features: [
        ...ACCOUNT.features.map((f): FeatureDeclaration =>
          f.column === 'receiverId' ? { column: 'receiverId', kind: 'categorical' } : f,
        ),
        { column: 'vatRatePercent', kind: 'numeric' } satisfies FeatureDeclaration,
      ].filter((f) => f.column !== 'lineCount'),
    };
    const comparison = compareEncoding(stored, edited);
    expect(comparison).toEqual({
      kind: 'changed',
      modelVersion: encoder.version,
      declaredVersion: encodingVersion(edited),
      changes: [
        'feature receiverId: high-cardinality → categorical',
        'feature lineCount removed',
        'feature vatRatePercent added (numeric)',
      ],
    });
    expect(compareEncoding(stored, { ...ACCOUNT, features: [...ACCOUNT.features].reverse() })).toMatchObject({
      kind: 'changed',
      changes: ['features reordered'],
    });

    // The stored model reads rows with its own declaration, whatever the file says now.
    const oldModel = DeclaredFeatureEncoder.fromJSON(stored);
    expect(oldModel.featureNames).toEqual(encoder.featureNames);
    expect(oldModel.declaration.features).toEqual(ACCOUNT.features);
  });

  it('refuses a stored state whose version is not what its declaration reads as, or whose parts disagree', () => {
    const state = DeclaredFeatureEncoder.fit(declared(ACCOUNT, TRAIN)).encoder.toJSON();
    expect(() =>
      DeclaredFeatureEncoder.fromJSON({ ...state, encodingVersion: 'declared-features/1:0000' }),
    ).toThrow(/encoding declared-features\/1:0000 is not what this code reads .*retrain the model/);
    const tampered = {
      ...state,
      declaration: { ...state.declaration, features: state.declaration.features.slice(1) },
    };
    expect(() => DeclaredFeatureEncoder.fromJSON(tampered)).toThrow(FeatureEncodingError);
    const lostEdges = { ...state, numericEdges: {} };
    expect(() => DeclaredFeatureEncoder.fromJSON(lostEdges)).toThrow('no bin edges for amountNet');
    expect(() => DeclaredFeatureEncoder.fromJSON({ ...state, categories: 'x' })).toThrow(
      /invalid encoder state: categories/,
    );
  });

  it('a row without a declared column is refused with the column named', () => {
    const columns = new DeclaredColumns(ACCOUNT);
    const { receiverId: _dropped, ...withoutReceiver } = TRAIN[0];
    expect(() => columns.push(withoutReceiver)).toThrow(`row ${TRAIN[0].invoiceId} has no receiverId column`);
    const unlabelled = { ...TRAIN[0], accountCode: undefined };
    expect(() => columns.push(unlabelled, true)).toThrow('has no accountCode column');
  });

  it('the forest in shared/model learns the account code from the declared encoding', async () => {
    const { encoder, matrix, labels } = DeclaredFeatureEncoder.fit(declared(ACCOUNT, TRAIN));
    const forest = await trainForest(
      { ...matrix, binCounts: encoder.binCounts, labels, classCount: encoder.classes.length },
      [...encoder.classes],
      { trees: 10, maxFeatures: 'sqrt', minSamplesLeaf: 1, maxDepth: 24, seed: 3, threads: 1 },
    );
    const later = declared(ACCOUNT, LATER);
    const encoded = encoder.encode(later);
    const predicted = predictClasses(forest, encoded.bins, encoded.rows);
    let correct = 0;
    const counts = new Map<string, number>();
    for (let r = 0; r < later.length; r++) {
      const actual = later.labelDictionary.values[later.labelIds[r]];
      counts.set(actual, (counts.get(actual) ?? 0) + 1);
      if (encoder.classes[predicted[r]] === actual) correct++;
    }
    const majorityShare = Math.max(...counts.values()) / later.length;
    expect(correct / later.length).toBeGreaterThan(0.8);
    expect(correct / later.length).toBeGreaterThan(majorityShare + 0.4);
  });
});
