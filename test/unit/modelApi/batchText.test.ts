import { BatchText, NotOnlyInvoices } from '../../../containers/model-api/batchText';

function readAll(text: string, slice: number): unknown[] {
  const reader = BatchText.open(text);
  if (!reader) throw new Error('not an envelope');
  const rows: unknown[] = [];
  for (let next = reader.next(slice); next !== null; next = reader.next(slice)) rows.push(...next);
  return rows;
}

describe('BatchText reads {"invoices": [...]} a slice at a time, exactly as JSON.parse would', () => {
  const rows = [
    { invoiceId: 'a]b}c', note: 'quote \\" and [brackets] {braces}, commas' },
    { nested: { deep: [1, [2, { x: '}' }]] }, n: -1.5e3 },
    'a string row',
    42,
    null,
    [],
    { '\u00e9\u{1f600}': '\\\\' },
    { __proto__: null, plain: true },
  ];

  it.each([1, 2, 3, 100])('slices of %i rows', (slice) => {
    const compact = JSON.stringify({ invoices: rows });
    const pretty = JSON.stringify({ invoices: rows }, null, 2);
    expect(readAll(compact, slice)).toEqual(JSON.parse(compact).invoices);
    expect(readAll(`\n ${pretty}\n\t`, slice)).toEqual(JSON.parse(pretty).invoices);
    expect(readAll('{"invoices":[]}', slice)).toEqual([]);
  });

  it('keeps a __proto__ key as an own property, as JSON.parse does', () => {
    const [row] = readAll('{"invoices":[{"__proto__":{"polluted":1}}]}', 10) as Record<string, unknown>[];
    expect(Object.keys(row)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('hands other shapes to the whole-body path and refuses broken JSON', () => {
    expect(BatchText.open('[{"invoices":[]}]')).toBeNull();
    expect(BatchText.open('{"other": 1, "invoices": []}')).toBeNull();
    expect(BatchText.open('{"invoices": {}}')).toBeNull();
    expect(BatchText.open('{"invoices": [1]')).toBeNull();
    expect(() => readAll('{"invoices": [1], "more": [2]}', 10)).toThrow(NotOnlyInvoices);
    for (const broken of [
      '{"invoices": [1,]}',
      '{"invoices": [,1]}',
      '{"invoices": [1 2]}',
      '{"invoices": [{"a": }]}',
      '{"invoices": [{"a": 1}}',
      '{"invoices": ["unterminated]}',
      '{"invoices": [0x10]}',
      '{"invoices": [1]} trailing}',
    ]) {
      expect(() => readAll(broken, 1)).toThrow(SyntaxError);
    }
  });

  it('counts the rest of a too-long batch without parsing it', () => {
    const reader = BatchText.open(
      JSON.stringify({ invoices: Array.from({ length: 25 }, (_, i) => ({ i })) }),
    );
    expect(reader?.next(10)).toHaveLength(10);
    expect(reader?.countRest()).toBe(15);
    expect(reader?.next(10)).toBeNull();
  });
});
