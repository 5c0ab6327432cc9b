import { MAX_BATCH_NAME_CHARS, classifyBatchName, safeNameFor } from '../../../shared/pipeline/batchNames';

describe('classifyBatchName', () => {
  it.each([
    'week 1.csv',
    'wéek-ü-日本.csv',
    'sub/folder/batch.csv',
    '.hidden.csv',
    `${'x'.repeat(226)}.csv`,
    'a..b.csv',
    'x'.repeat(MAX_BATCH_NAME_CHARS),
  ])('accepts the odd but legal name %j', (name) => {
    expect(classifyBatchName(name)).toEqual({ kind: 'legal', name });
  });

  it.each([
    ['', /blank/],
    ['   ', /blank/],
    ['a\u0001b.csv', /control/],
    ['a\nb.csv', /control/],
    ['a\u0085b.csv', /control/],
    ['a\ud800b.csv', /surrogate/],
    ['x'.repeat(MAX_BATCH_NAME_CHARS + 1), /1002 characters; at most 1001/],
    ['a//b.csv', /empty path segment/],
    ['/a.csv', /empty path segment/],
    ['a.csv.', /ends with a dot/],
  ])('quarantines %j under a safe name', (name, reason) => {
    const verdict = classifyBatchName(name);
    expect(verdict).toMatchObject({ kind: 'illegal', safeName: safeNameFor(name), unaddressable: false });
    if (verdict.kind === 'illegal') expect(verdict.reason).toMatch(reason);
  });

  it('never addresses a name with a dot segment: clients would resolve it to another blob', () => {
    for (const name of ['../models/x.csv', 'a/../b.csv', './a.csv', 'a/.']) {
      expect(classifyBatchName(name)).toMatchObject({ kind: 'illegal', unaddressable: true });
    }
  });

  it('derives distinct safe names that fit every derived blob name', () => {
    expect(safeNameFor('a\u0001')).not.toBe(safeNameFor('a\u0002'));
    expect(safeNameFor('a\u0001')).toMatch(/^illegal-name-[0-9a-f]{24}$/);
    expect(`quarantine/${'x'.repeat(MAX_BATCH_NAME_CHARS)}.reason.json`).toHaveLength(1024);
  });
});
