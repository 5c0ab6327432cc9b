import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { ValidationError } from '../../../shared/errors';
import { generateBatches, register } from '../../../shared/cli/commands/generate';
import { BatchTally, parseInvoiceBatch } from '../../../shared/invoices/parser';

describe('green-ml generate', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'generate-cli-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes parseable weekly files and prints one JSON line listing them', async () => {
    const out: string[] = [];
    const program = new Command().exitOverride();
    register(program);
    const generate = program.commands.find((c) => c.name() === 'generate');
    expect(generate).toBeDefined();
    const result = await generateBatches(
      {
        scenario: 'vat-reform',
        weeks: '2',
        rowsPerWeek: '300',
        seed: '5',
        out: join(dir, 'batches'),
        format: 'csv.gz',
      },
      { out: (t) => out.push(t) },
    );
    expect(out).toHaveLength(1);
    const printed = JSON.parse(out[0]) as { files: string[]; scenario: string };
    expect(printed).toEqual(JSON.parse(JSON.stringify(result)));
    expect(printed.files.map((f) => f.slice(f.lastIndexOf('/') + 1))).toEqual([
      'invoices-2024-07-01.csv.gz',
      'invoices-2024-07-08.csv.gz',
    ]);
    const tally = new BatchTally();
    for await (const record of parseInvoiceBatch(createReadStream(printed.files[1]), {
      fileName: printed.files[1],
    })) {
      tally.add(record);
    }
    expect(tally.summary()).toMatchObject({ rowsRead: 300, accepted: 300, rejected: 0 });
  });

  it('parses the command line through commander, with defaults', async () => {
    const program = new Command().exitOverride();
    register(program);
    const writes: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      await program.parseAsync(
        [
          'generate',
          '--scenario',
          'stable',
          '--weeks',
          '1',
          '--rows-per-week',
          '50',
          '--out',
          dir,
          '--format',
          'jsonl',
        ],
        { from: 'user' },
      );
    } finally {
      spy.mockRestore();
    }
    const printed = JSON.parse(writes.join('')) as { files: string[]; seed: number; format: string };
    expect(printed).toMatchObject({ seed: 1, format: 'jsonl' });
    expect(printed.files).toHaveLength(1);
  });

  it.each([
    [{ scenario: 'drifty' }, /scenario: expected one of stable, supplier-churn, vat-reform, new-market/],
    [{ weeks: 'ten' }, /weeks: --weeks must be a whole number/],
    [{ weeks: '0' }, /weeks: --weeks must be at least 1/],
    [{ rowsPerWeek: '-5' }, /rowsPerWeek: --rows-per-week must be a whole number/],
    [{ format: 'xlsx' }, /format: expected one of csv, jsonl, csv\.gz, jsonl\.gz/],
    [{ startDate: '2024-07-03' }, /startDate: must be a Monday/],
  ])('rejects bad arguments with a clear ValidationError: %o', async (override, message) => {
    const options = {
      scenario: 'stable',
      weeks: '1',
      rowsPerWeek: '10',
      seed: '1',
      out: dir,
      format: 'csv',
      ...override,
    };
    const error = await generateBatches(options, { out: () => undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toMatch(message);
  });

  it('documents every option in --help', () => {
    const program = new Command().exitOverride();
    register(program);
    const help = program.commands.find((c) => c.name() === 'generate')!.helpInformation();
    for (const flag of [
      '--scenario',
      '--weeks',
      '--rows-per-week',
      '--seed',
      '--out',
      '--format',
      '--start-date',
    ]) {
      expect(help).toContain(flag);
    }
    expect(help).toContain('supplier-churn');
  });
});
