import { BATCH_JOURNAL_SCHEMA, perPipelineJournal } from '../../../shared/pipeline/batchLedger';

describe('batch journal', () => {
  it('a single-model journal taken before pipelines were declared resumes as its one pipeline, progress kept', () => {
    const draft = { modelName: 'vat-rate', batchName: 'b.csv', decision: { kind: 'retrainNow' } };
    const legacy = BATCH_JOURNAL_SCHEMA.parse({
      evaluatedAt: '2024-09-02T06:00:00.000Z',
      scored: { kind: 'evaluated', draft },
      moved: true,
      submitted: { outcome: 'created', escalated: false },
      starting: true,
    });
    expect(perPipelineJournal(legacy)).toEqual({
      evaluatedAt: '2024-09-02T06:00:00.000Z',
      moved: true,
      scored: { kind: 'pipelines', pipelines: [{ kind: 'evaluated', modelName: 'vat-rate', draft }] },
      progress: {
        'vat-rate': {
          submitted: { outcome: 'created', escalated: false },
          starting: true,
          action: undefined,
          recorded: undefined,
        },
      },
    });
    // Already per pipeline (or not scored yet): unchanged.
    const current = perPipelineJournal(legacy);
    expect(perPipelineJournal(current)).toBe(current);
    const fresh = { evaluatedAt: '2024-09-02T06:00:00.000Z' };
    expect(perPipelineJournal(fresh)).toBe(fresh);
    // The per-pipeline form survives the ledger's own schema (what `save` writes, `claim` reads).
    expect(BATCH_JOURNAL_SCHEMA.parse(JSON.parse(JSON.stringify(current)))).toEqual(
      JSON.parse(JSON.stringify(current)),
    );
  });
});
