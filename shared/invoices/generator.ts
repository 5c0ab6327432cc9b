import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { z } from 'zod';
import { parseWith } from '../validation';
import {
  type Rng,
  WeightedSampler,
  geometricWeeks,
  intBelow,
  pick,
  pickWeighted,
  rngFor,
  standardNormal,
  streamKey,
} from './random';
import type { InvoiceRow } from './schema';
import { coalesce, serializeCsv, serializeJsonl } from './serialize';
import {
  EU_COUNTRIES,
  EU_LOCAL_RATES,
  LOCALLY_TAXED,
  type RateTable,
  SE_RATES,
  type VatCategory,
  distinctRates,
  finnishRates,
} from './vatRates';
import {
  ALL_FI_ACCOUNTS,
  BASE_SUPPLIERS,
  CHURN_HAZARD_PER_WEEK,
  CROSS_BORDER_GOODS_ACCOUNT,
  CURRENCY_OF,
  PER_EUR,
  type Receiver,
  SE_ACCOUNT_FOR,
  type Sector,
  type Supplier,
  type World,
  foundingWorld,
  makeSupplier,
} from './world';

export { serializeCsv, serializeJsonl } from './serialize';

/**
 * Synthetic labelled invoice batches, one per week, for five drift scenarios:
 * - `stable`: the founding world, Finnish rates frozen at their pre-2024-09 values;
 * - `supplier-churn`: gradual drift, founding suppliers leave (8 %/week) and new ones arrive with
 *   a sector mix shifting towards software, travel and marketing, so an old model degrades slowly;
 * - `vat-reform`: sudden concept drift, Finland's general rate goes 24 → 25.5 % for rows issued on
 *   or after 2024-09-01 (other rates unchanged);
 * - `new-market`: from week `newMarketStartWeek` the SaaS gains Swedish customers who book Swedish
 *   suppliers at Swedish rates (25/12/6 %) on BAS accounts; no SE supplier appears before that week;
 * - `chart-of-accounts`: sudden drift of the bookings only, the VAT rates of `stable`: from week
 *   `accountChangeStartWeek` the company adopts a new chart of accounts, so purchases each receiver
 *   used to book on a sector's usual account go to its alternative account and the other way round
 *   (same codes, same categories), which moves an account-code model and leaves a VAT-rate model be.
 * Label noise: 3 % of rows are booked at another rate valid on that date, 4 % on a random account,
 * and the reverse-charge flag is sometimes missing or wrong, so no model reaches 100 %.
 */
export type ScenarioName = 'stable' | 'supplier-churn' | 'vat-reform' | 'new-market' | 'chart-of-accounts';
/** The scenarios that move the VAT-rate model (the policy benchmarks replay these). */
export const SCENARIOS: readonly ScenarioName[] = ['stable', 'supplier-churn', 'vat-reform', 'new-market'];
/** Every scenario, with `chart-of-accounts`, which moves the bookings (an account-code model) only. */
export const ALL_SCENARIOS: readonly ScenarioName[] = [...SCENARIOS, 'chart-of-accounts'];

export interface GeneratorOptions {
  scenario: ScenarioName;
  weeks: number;
  rowsPerWeek: number;
  seed: number;
  /** ISO date of week 0's Monday; the default puts the 2024-09-01 reform mid-way through 12 weeks. */
  startDate?: string;
}

export const DEFAULT_START_DATE = '2024-07-01';
const LABEL_NOISE = 0.03;
const ACCOUNT_NOISE = 0.04;
const CREDIT_NOTE_SHARE = 0.015;

const OPTIONS_SCHEMA = z.object({
  scenario: z.enum(ALL_SCENARIOS as [ScenarioName, ...ScenarioName[]]),
  weeks: z.number().int().min(1).max(520),
  rowsPerWeek: z.number().int().min(1).max(10_000_000),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1),
  startDate: z.iso
    .date('expected an ISO date (YYYY-MM-DD)')
    .refine((d) => new Date(`${d}T00:00:00Z`).getUTCDay() === 1, 'must be a Monday')
    .optional(),
});

function validated(options: GeneratorOptions): Required<GeneratorOptions> {
  const parsed = parseWith(OPTIONS_SCHEMA, options, 'generator options');
  return { ...parsed, startDate: parsed.startDate ?? DEFAULT_START_DATE };
}

const DAY_MS = 86_400_000;

function addDays(isoDate: string, days: number): string {
  return new Date(Date.parse(`${isoDate}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

export function weekStartDate(options: GeneratorOptions, weekIndex: number): string {
  const o = validated(options);
  checkWeek(o, weekIndex);
  return addDays(o.startDate, 7 * weekIndex);
}

function checkWeek(options: Required<GeneratorOptions>, weekIndex: number): void {
  parseWith(
    z
      .number()
      .int()
      .min(0)
      .max(options.weeks - 1),
    weekIndex,
    'week index',
  );
}

/** The week from which `new-market` has Swedish receivers: the middle of the run (at least week 1). */
export function newMarketStartWeek(options: GeneratorOptions): number {
  return Math.max(1, Math.floor(validated(options).weeks / 2));
}

/** The week from which `chart-of-accounts` books on the new chart: the middle of the run (at least week 1). */
export function accountChangeStartWeek(options: GeneratorOptions): number {
  return Math.max(1, Math.floor(validated(options).weeks / 2));
}

// ---------------------------------------------------------------- world per scenario and week

const worldCache = new Map<string, World>();

function worldFor(seed: number, churn: boolean): World {
  const key = `${seed}|${churn}`;
  let world = worldCache.get(key);
  if (!world) {
    world = foundingWorld(seed, churn);
    if (worldCache.size >= 8) worldCache.delete(worldCache.keys().next().value as string);
    worldCache.set(key, world);
  }
  return world;
}

/** Sectors that grow among newly arriving suppliers in `supplier-churn`. */
const CHURN_TARGET: Readonly<Record<string, number>> = {
  'it-software': 3,
  'marketing-events': 2,
  hotel: 2,
  'restaurant-catering': 2,
  'passenger-transport': 2,
  'goods-wholesale': 0.3,
  'office-supplies': 0.5,
  'food-wholesale': 0.5,
};

/** Suppliers that arrive in week k ≥ 1; each week has its own stream, so this never depends on other weeks. */
function arrivals(seed: number, week: number): Supplier[] {
  const rng = rngFor(seed, 'churn-arrivals', week);
  const shift = Math.min(1, week / 10);
  const sectorWeights = (s: Sector) => s.weight * (1 - shift + shift * (CHURN_TARGET[s.name] ?? 1));
  const count = Math.round(BASE_SUPPLIERS * CHURN_HAZARD_PER_WEEK * (0.8 + 0.4 * rng()));
  const out: Supplier[] = [];
  for (let j = 0; j < count; j++) {
    const id = `SUP-N${String(week).padStart(3, '0')}${String(j).padStart(3, '0')}`;
    const leaveWeek = week + geometricWeeks(rng, CHURN_HAZARD_PER_WEEK);
    out.push(makeSupplier(rng, { id, sectorWeights, firstWeek: week, leaveWeek }));
  }
  return out;
}

const SE_RECEIVERS = 12;
const SE_SUPPLIERS = 80;

function swedishWorld(seed: number): { receivers: Receiver[]; suppliers: Supplier[] } {
  const rng = rngFor(seed, 'new-market');
  const suppliers = Array.from({ length: SE_SUPPLIERS }, (_, i) =>
    makeSupplier(rng, {
      id: `SUP-SE${String(i + 1).padStart(4, '0')}`,
      country: 'SE',
      firstWeek: 0,
      leaveWeek: Infinity,
    }),
  );
  const receivers = Array.from({ length: SE_RECEIVERS }, (_, i) => ({
    id: `RCV-SE${String(i + 1).padStart(3, '0')}`,
    country: 'SE' as const,
    popularity: 1 / (1 + i) ** 0.8,
    habitKey: Math.floor(rng() * 2 ** 32),
  }));
  return { receivers, suppliers };
}

interface WeekPlan {
  readonly weekStart: string;
  readonly regime: 'historical' | 'frozen';
  readonly fi: Market;
  /** Swedish customers (new-market, from its start week); `share` of the week's rows are theirs. */
  readonly se?: Market & { share: number };
  /** Which of a sector's accounts receivers book on: the founding habits, or the new chart's. */
  readonly chart: 'original' | 'new';
}

interface Market {
  readonly receivers: WeightedSampler<Receiver>;
  readonly suppliers: WeightedSampler<Supplier>;
}

function planWeek(options: Required<GeneratorOptions>, weekIndex: number): WeekPlan {
  const churn = options.scenario === 'supplier-churn';
  const world = worldFor(options.seed, churn);
  let suppliers: readonly Supplier[] = world.suppliers;
  if (churn) {
    const active = world.suppliers.filter((s) => s.leaveWeek > weekIndex);
    for (let k = 1; k <= weekIndex; k++)
      active.push(...arrivals(options.seed, k).filter((s) => s.leaveWeek > weekIndex));
    suppliers = active;
  }
  const plan: WeekPlan = {
    weekStart: addDays(options.startDate, 7 * weekIndex),
    regime: options.scenario === 'vat-reform' ? 'historical' : 'frozen',
    chart:
      options.scenario === 'chart-of-accounts' && weekIndex >= accountChangeStartWeek(options)
        ? 'new'
        : 'original',
    fi: {
      receivers: new WeightedSampler(world.receivers, (r) => r.popularity),
      suppliers: new WeightedSampler(suppliers, (s) => s.popularity),
    },
  };
  const start = newMarketStartWeek(options);
  if (options.scenario === 'new-market' && weekIndex >= start) {
    const se = swedishWorld(options.seed);
    return {
      ...plan,
      se: {
        receivers: new WeightedSampler(se.receivers, (r) => r.popularity),
        suppliers: new WeightedSampler(se.suppliers, (s) => s.popularity),
        share: Math.min(0.3, 0.1 + 0.04 * (weekIndex - start)),
      },
    };
  }
  return plan;
}

// ---------------------------------------------------------------- one row

interface Booking {
  rate: number;
  reverseCharge: boolean;
  /** Rates a bookkeeper could plausibly have picked instead (for label noise). */
  table: RateTable;
}

function book(
  receiver: Receiver,
  supplier: Supplier,
  category: VatCategory,
  date: string,
  plan: WeekPlan,
): Booking {
  if (receiver.country === 'SE') return { rate: SE_RATES[category], reverseCharge: false, table: SE_RATES };
  const table = finnishRates(date, plan.regime);
  if (supplier.country === 'FI') return { rate: table[category], reverseCharge: false, table };
  const local = EU_LOCAL_RATES[supplier.country];
  if (EU_COUNTRIES.has(supplier.country)) {
    if (local && LOCALLY_TAXED.has(category)) {
      return { rate: local[category as keyof typeof local], reverseCharge: false, table };
    }
    return { rate: 0, reverseCharge: true, table };
  }
  return { rate: 0, reverseCharge: supplier.sector.supplies === 'services', table };
}

function account(
  rng: Rng,
  receiver: Receiver,
  supplier: Supplier,
  category: VatCategory,
  accounts: readonly string[],
  chart: WeekPlan['chart'],
): string {
  let code: string;
  if (rng() < ACCOUNT_NOISE) {
    code = pick(rng, ALL_FI_ACCOUNTS);
  } else if (accounts.length === 1) {
    code = accounts[0];
  } else {
    // Each receiver has a stable habit per (sector, category): mostly the usual account, sometimes another.
    const habit = streamKey(receiver.habitKey, supplier.sector.name, category);
    const usual = habit % 4 !== 0;
    // The new chart swaps usual and alternative: the same draws, so only the bookings move.
    const onUsual = chart === 'original' ? usual : !usual;
    code = onUsual ? accounts[0] : accounts[1 + (habit % (accounts.length - 1))];
  }
  if (code === '4000' && supplier.sector.supplies === 'goods' && supplier.country !== receiver.country) {
    code = EU_COUNTRIES.has(supplier.country)
      ? CROSS_BORDER_GOODS_ACCOUNT.eu
      : CROSS_BORDER_GOODS_ACCOUNT.nonEu;
  }
  return receiver.country === 'SE' ? (SE_ACCOUNT_FOR[code] ?? code) : code;
}

function issueDate(rng: Rng, weekStart: string): string {
  const weekend = rng() < 0.05;
  return addDays(weekStart, weekend ? 5 + intBelow(rng, 2) : intBelow(rng, 5));
}

function makeRow(rng: Rng, plan: WeekPlan, index: number): InvoiceRow {
  const market = plan.se && rng() < plan.se.share ? plan.se : plan.fi;
  const receiver = market.receivers.sample(rng);
  const supplier = market.suppliers.sample(rng);
  const mixEntry = supplier.sector.mix[pickWeighted(rng, supplier.mix)];
  const category: VatCategory =
    supplier.optedIntoVat && mixEntry.category === 'exempt' ? 'general' : mixEntry.category;
  const issuedAt = issueDate(rng, plan.weekStart);
  const booking = book(receiver, supplier, category, issuedAt, plan);

  let vatRatePercent = booking.rate;
  if (rng() < LABEL_NOISE) {
    const others = [...distinctRates(booking.table), 0].filter((r) => r !== booking.rate);
    vatRatePercent = pick(rng, [...new Set(others)]);
  }
  let reverseCharge = booking.reverseCharge;
  if (reverseCharge ? rng() < 0.03 : rng() < 0.005) reverseCharge = !reverseCharge;

  const currency = pickWeighted(rng, CURRENCY_OF[supplier.country] ?? [{ value: 'EUR', weight: 1 }]);
  const sector = supplier.sector;
  const euros = Math.exp(sector.logAmountMean + sector.logAmountSd * standardNormal(rng));
  const sign = rng() < CREDIT_NOTE_SHARE ? -1 : 1;
  const amountNet = sign * Math.max(0.01, Math.round(euros * PER_EUR[currency] * 100) / 100);
  const lineCount = Math.min(10_000, 1 + Math.floor(-Math.log(1 - rng()) * sector.meanExtraLines));

  return {
    invoiceId: `INV-${plan.weekStart.replaceAll('-', '')}-${String(index + 1).padStart(6, '0')}`,
    issuedAt,
    supplierId: supplier.id,
    supplierCountry: supplier.country,
    receiverId: receiver.id,
    accountCode: account(rng, receiver, supplier, category, mixEntry.accounts, plan.chart),
    currency,
    amountNet,
    lineCount,
    reverseCharge,
    vatRatePercent,
  };
}

/**
 * The rows of one week. Re-iterable and deterministic for (options, weekIndex): each week draws
 * from its own seeded stream, so generating other weeks (or none) never changes it.
 */
export function generateWeek(options: GeneratorOptions, weekIndex: number): Iterable<InvoiceRow> {
  const o = validated(options);
  checkWeek(o, weekIndex);
  return {
    *[Symbol.iterator]() {
      const plan = planWeek(o, weekIndex);
      const rng = rngFor(o.seed, 'week', weekIndex);
      for (let i = 0; i < o.rowsPerWeek; i++) yield makeRow(rng, plan, i);
    },
  };
}

export type OutputFormat = 'csv' | 'jsonl' | 'csv.gz' | 'jsonl.gz';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['csv', 'jsonl', 'csv.gz', 'jsonl.gz'];

function* counted<T>(
  items: Iterable<T>,
  report: ((rows: number) => void) | undefined,
  every = 5000,
): Iterable<T> {
  let pending = 0;
  for (const item of items) {
    yield item;
    if (report && ++pending === every) {
      report(pending);
      pending = 0;
    }
  }
  if (report && pending > 0) report(pending);
}

/**
 * Writes one file per week (`invoices-<week start>.<format>`), streamed to disk; each file appears
 * under its final name only when complete. Returns the paths in week order.
 */
export async function writeBatches(
  options: GeneratorOptions & {
    outDir: string;
    format?: OutputFormat;
    onWeek?: (weekIndex: number, filePath: string) => void;
    /** Called with the number of rows written since the last call (for progress bars). */
    onRows?: (rows: number) => void;
  },
): Promise<string[]> {
  const o = validated(options);
  const format = parseWith(
    z.enum(OUTPUT_FORMATS as [OutputFormat, ...OutputFormat[]]),
    options.format ?? 'csv',
    'output format',
  );
  await mkdir(options.outDir, { recursive: true });
  const written: string[] = [];
  for (let week = 0; week < o.weeks; week++) {
    const filePath = join(options.outDir, `invoices-${addDays(o.startDate, 7 * week)}.${format}`);
    const rows = counted(generateWeek(o, week), options.onRows);
    const text = format.startsWith('csv') ? serializeCsv(rows) : serializeJsonl(rows);
    const partial = `${filePath}.partial`;
    try {
      const source = Readable.from(coalesce(text));
      if (format.endsWith('.gz')) await pipeline(source, createGzip(), createWriteStream(partial));
      else await pipeline(source, createWriteStream(partial));
      await rename(partial, filePath);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    written.push(filePath);
    options.onWeek?.(week, filePath);
  }
  return written;
}
