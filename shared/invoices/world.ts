import { type Rng, geometricWeeks, intBelow, pickWeighted, rngFor } from './random';
import type { VatCategory } from './vatRates';

/**
 * The synthetic world behind the invoices: a Finnish financial-management SaaS whose customers
 * (receivers, Finnish companies) book purchase invoices from suppliers. A supplier has a home
 * country, a sector (which fixes what it sells, hence the VAT category) and a popularity; a
 * receiver has habits for which account it books each kind of purchase on. Everything is derived
 * from the seed, so the same seed always yields the same world.
 */
export interface Sector {
  readonly name: string;
  /** Share of suppliers in this sector. */
  readonly weight: number;
  /** Goods and general-rule services follow different cross-border rules. */
  readonly supplies: 'goods' | 'services';
  readonly countries: readonly { value: string; weight: number }[];
  /** What the sector sells: category share and the Finnish accounts it is booked on (habitual first). */
  readonly mix: readonly { category: VatCategory; share: number; accounts: readonly string[] }[];
  /** ln(EUR net amount) mean and spread. */
  readonly logAmountMean: number;
  readonly logAmountSd: number;
  readonly meanExtraLines: number;
}

const FI = 'FI';
const c = (...pairs: [string, number][]) => pairs.map(([value, weight]) => ({ value, weight }));

// Accounts follow a Finnish chart of accounts: 4xxx purchases, 6xxx premises, 7xxx other expenses.
export const SECTORS: readonly Sector[] = [
  {
    name: 'it-software',
    weight: 10,
    supplies: 'services',
    countries: c([FI, 45], ['IE', 15], ['US', 25], ['DE', 5], ['NL', 5], ['EE', 5]),
    mix: [{ category: 'general', share: 1, accounts: ['7680', '4450'] }],
    logAmountMean: 6.0,
    logAmountSd: 1.1,
    meanExtraLines: 1,
  },
  {
    name: 'consulting-accounting',
    weight: 7,
    supplies: 'services',
    countries: c([FI, 85], ['EE', 5], ['DE', 5], ['GB', 5]),
    mix: [{ category: 'general', share: 1, accounts: ['7800', '4450'] }],
    logAmountMean: 7.0,
    logAmountSd: 0.9,
    meanExtraLines: 1.5,
  },
  {
    name: 'office-supplies',
    weight: 8,
    supplies: 'goods',
    countries: c([FI, 80], ['DE', 10], ['CN', 10]),
    mix: [
      { category: 'general', share: 0.92, accounts: ['7600', '4000'] },
      { category: 'books', share: 0.08, accounts: ['7650', '7600'] },
    ],
    logAmountMean: 4.8,
    logAmountSd: 1.0,
    meanExtraLines: 5,
  },
  {
    name: 'food-wholesale',
    weight: 6,
    supplies: 'goods',
    countries: c([FI, 95], ['EE', 5]),
    mix: [
      { category: 'food', share: 0.85, accounts: ['7400', '4000'] },
      { category: 'general', share: 0.15, accounts: ['7400', '7340'] },
    ],
    logAmountMean: 5.5,
    logAmountSd: 0.9,
    meanExtraLines: 8,
  },
  {
    name: 'restaurant-catering',
    weight: 8,
    supplies: 'services',
    countries: c([FI, 85], ['DE', 5], ['EE', 5], ['DK', 5]),
    mix: [
      { category: 'restaurant', share: 0.85, accounts: ['7340', '7400'] },
      { category: 'general', share: 0.15, accounts: ['7340'] },
    ],
    logAmountMean: 4.5,
    logAmountSd: 0.8,
    meanExtraLines: 2,
  },
  {
    name: 'hotel',
    weight: 5,
    supplies: 'services',
    countries: c([FI, 70], ['DE', 10], ['EE', 10], ['DK', 5], ['NL', 5]),
    mix: [
      { category: 'accommodation', share: 0.85, accounts: ['7310'] },
      { category: 'restaurant', share: 0.1, accounts: ['7310', '7340'] },
      { category: 'general', share: 0.05, accounts: ['7310'] },
    ],
    logAmountMean: 5.3,
    logAmountSd: 0.7,
    meanExtraLines: 1,
  },
  {
    name: 'passenger-transport',
    weight: 5,
    supplies: 'services',
    countries: c([FI, 85], ['DE', 5], ['EE', 5], ['DK', 5]),
    mix: [
      { category: 'passenger-transport', share: 0.95, accounts: ['7300'] },
      { category: 'general', share: 0.05, accounts: ['7300'] },
    ],
    logAmountMean: 4.6,
    logAmountSd: 0.9,
    meanExtraLines: 0.5,
  },
  {
    name: 'publisher-books',
    weight: 3,
    supplies: 'goods',
    countries: c([FI, 80], ['DE', 10], ['GB', 10]),
    mix: [
      { category: 'books', share: 0.8, accounts: ['7650'] },
      { category: 'newspapers', share: 0.1, accounts: ['7650'] },
      { category: 'general', share: 0.1, accounts: ['7650', '7600'] },
    ],
    logAmountMean: 4.5,
    logAmountSd: 0.8,
    meanExtraLines: 2,
  },
  {
    name: 'pharmacy',
    weight: 2,
    supplies: 'goods',
    countries: c([FI, 100]),
    mix: [
      { category: 'medicine', share: 0.75, accounts: ['7910'] },
      { category: 'general', share: 0.25, accounts: ['7910', '7600'] },
    ],
    logAmountMean: 4.2,
    logAmountSd: 0.8,
    meanExtraLines: 2,
  },
  {
    name: 'occupational-health',
    weight: 3,
    supplies: 'services',
    countries: c([FI, 100]),
    mix: [
      { category: 'exempt', share: 0.8, accounts: ['7900'] },
      { category: 'general', share: 0.2, accounts: ['7900'] },
    ],
    logAmountMean: 5.8,
    logAmountSd: 0.9,
    meanExtraLines: 1,
  },
  {
    name: 'insurance-bank',
    weight: 3,
    supplies: 'services',
    countries: c([FI, 100]),
    mix: [{ category: 'exempt', share: 1, accounts: ['7850', '7860'] }],
    logAmountMean: 5.5,
    logAmountSd: 1.2,
    meanExtraLines: 0.3,
  },
  {
    name: 'landlord',
    weight: 4,
    supplies: 'services',
    countries: c([FI, 100]),
    mix: [{ category: 'exempt', share: 1, accounts: ['6800'] }],
    logAmountMean: 7.5,
    logAmountSd: 0.8,
    meanExtraLines: 0.2,
  },
  {
    name: 'facility-services',
    weight: 5,
    supplies: 'services',
    countries: c([FI, 100]),
    mix: [{ category: 'general', share: 1, accounts: ['7100', '4450'] }],
    logAmountMean: 6.0,
    logAmountSd: 0.9,
    meanExtraLines: 1,
  },
  {
    name: 'telecom-energy',
    weight: 5,
    supplies: 'services',
    countries: c([FI, 100]),
    mix: [{ category: 'general', share: 1, accounts: ['7500', '6850'] }],
    logAmountMean: 5.5,
    logAmountSd: 1.0,
    meanExtraLines: 1,
  },
  {
    name: 'logistics-freight',
    weight: 4,
    supplies: 'services',
    countries: c([FI, 70], ['DE', 10], ['EE', 10], ['PL', 10]),
    mix: [{ category: 'general', share: 1, accounts: ['4500', '4000'] }],
    logAmountMean: 5.8,
    logAmountSd: 1.0,
    meanExtraLines: 2,
  },
  {
    name: 'marketing-events',
    weight: 5,
    supplies: 'services',
    countries: c([FI, 80], ['DE', 10], ['US', 10]),
    mix: [
      { category: 'general', share: 0.8, accounts: ['7700'] },
      { category: 'culture-sport', share: 0.2, accounts: ['7950', '7700'] },
    ],
    logAmountMean: 6.2,
    logAmountSd: 1.1,
    meanExtraLines: 2,
  },
  {
    name: 'goods-wholesale',
    weight: 9,
    supplies: 'goods',
    countries: c([FI, 50], ['DE', 20], ['PL', 10], ['NL', 5], ['FR', 5], ['CN', 7], ['US', 3]),
    mix: [{ category: 'general', share: 1, accounts: ['4000'] }],
    logAmountMean: 6.8,
    logAmountSd: 1.3,
    meanExtraLines: 6,
  },
  {
    name: 'fuel-vehicle',
    weight: 4,
    supplies: 'goods',
    countries: c([FI, 100]),
    mix: [{ category: 'general', share: 1, accounts: ['7000'] }],
    logAmountMean: 5.0,
    logAmountSd: 0.9,
    meanExtraLines: 1,
  },
  {
    name: 'culture-sport',
    weight: 3,
    supplies: 'services',
    countries: c([FI, 95], ['EE', 5]),
    mix: [
      { category: 'culture-sport', share: 0.9, accounts: ['7950'] },
      { category: 'general', share: 0.1, accounts: ['7950'] },
    ],
    logAmountMean: 5.0,
    logAmountSd: 0.9,
    meanExtraLines: 0.5,
  },
  {
    name: 'newspapers',
    weight: 2,
    supplies: 'goods',
    countries: c([FI, 100]),
    mix: [
      { category: 'newspapers', share: 0.9, accounts: ['7650'] },
      { category: 'general', share: 0.1, accounts: ['7650'] },
    ],
    logAmountMean: 4.8,
    logAmountSd: 0.6,
    meanExtraLines: 0.2,
  },
];

/** Goods bought from abroad go to their own purchase accounts (EU acquisitions, imports). */
export const CROSS_BORDER_GOODS_ACCOUNT = { eu: '4010', nonEu: '4020' } as const;

/** Every account code a row can carry, for the "booked on a random account" noise. */
export const ALL_FI_ACCOUNTS: readonly string[] = [
  ...new Set([
    ...SECTORS.flatMap((s) => s.mix.flatMap((m) => m.accounts)),
    CROSS_BORDER_GOODS_ACCOUNT.eu,
    CROSS_BORDER_GOODS_ACCOUNT.nonEu,
  ]),
].sort();

/** Swedish receivers book on the BAS chart of accounts; mapped from the Finnish account of the same purpose. */
export const SE_ACCOUNT_FOR: Readonly<Record<string, string>> = {
  '4000': '4010',
  '4010': '4515',
  '4020': '4545',
  '4450': '4600',
  '4500': '5710',
  '6800': '5010',
  '6850': '5020',
  '7000': '5611',
  '7100': '5170',
  '7300': '5810',
  '7310': '5831',
  '7340': '6071',
  '7400': '7690',
  '7500': '6212',
  '7600': '5410',
  '7650': '6970',
  '7680': '6540',
  '7700': '5910',
  '7800': '6530',
  '7850': '6310',
  '7860': '6570',
  '7900': '7620',
  '7910': '7631',
  '7950': '7632',
};

export const CURRENCY_OF: Readonly<Record<string, readonly { value: string; weight: number }[]>> = {
  FI: c(['EUR', 1]),
  DE: c(['EUR', 1]),
  EE: c(['EUR', 1]),
  NL: c(['EUR', 1]),
  FR: c(['EUR', 1]),
  IE: c(['EUR', 1]),
  DK: c(['DKK', 9], ['EUR', 1]),
  PL: c(['PLN', 6], ['EUR', 4]),
  GB: c(['GBP', 9], ['EUR', 1]),
  US: c(['USD', 1]),
  CN: c(['USD', 7], ['CNY', 3]),
  SE: c(['SEK', 19], ['EUR', 1]),
};

/** Approximate 2024 units of currency per EUR, so foreign amounts are on a plausible scale. */
export const PER_EUR: Readonly<Record<string, number>> = {
  EUR: 1,
  DKK: 7.46,
  PLN: 4.3,
  GBP: 0.85,
  USD: 1.08,
  CNY: 7.8,
  SEK: 11.4,
};

export interface Supplier {
  readonly id: string;
  readonly country: string;
  readonly sector: Sector;
  /** The supplier's own category mix: its sector's, perturbed, so suppliers differ within a sector. */
  readonly mix: readonly { value: number; weight: number }[];
  readonly popularity: number;
  /** First week it invoices (0 for the founding world). */
  readonly firstWeek: number;
  /** First week it no longer invoices (Infinity if it never leaves). */
  readonly leaveWeek: number;
  /** Landlords that opted to be VAT-liable charge the general rate on rent instead of 0 %. */
  readonly optedIntoVat: boolean;
}

export interface Receiver {
  readonly id: string;
  readonly country: 'FI' | 'SE';
  readonly popularity: number;
  /** Seed of this receiver's booking habits (which of a sector's accounts it prefers). */
  readonly habitKey: number;
}

/** Zipf-like popularity: a few suppliers send most invoices, as in real purchase ledgers. */
function popularity(rng: Rng): number {
  return 1 / Math.pow(1 + intBelow(rng, 400), 0.9);
}

export interface SupplierDraft {
  id: string;
  sectorWeights?: (sector: Sector) => number;
  country?: string;
  firstWeek: number;
  leaveWeek: number;
}

export function makeSupplier(rng: Rng, draft: SupplierDraft): Supplier {
  const sector = pickWeighted(
    rng,
    SECTORS.map((s) => ({ value: s, weight: draft.sectorWeights ? draft.sectorWeights(s) : s.weight })),
  );
  const country = draft.country ?? pickWeighted(rng, sector.countries);
  const mix = sector.mix.map((m, index) => ({ value: index, weight: m.share * (0.5 + rng()) }));
  return {
    id: draft.id,
    country,
    sector,
    mix,
    popularity: popularity(rng),
    firstWeek: draft.firstWeek,
    leaveWeek: draft.leaveWeek,
    optedIntoVat: sector.name === 'landlord' && rng() < 0.5,
  };
}

export const BASE_SUPPLIERS = 400;
export const BASE_RECEIVERS = 40;
/** Weekly chance that a founding supplier stops invoicing in `supplier-churn`. */
export const CHURN_HAZARD_PER_WEEK = 0.08;

export interface World {
  readonly seed: number;
  readonly receivers: readonly Receiver[];
  readonly suppliers: readonly Supplier[];
}

/** The founding world: same for every scenario with the same seed. */
export function foundingWorld(seed: number, churn: boolean): World {
  const rng = rngFor(seed, 'world');
  const leaveRng = rngFor(seed, 'world-leave');
  const suppliers: Supplier[] = [];
  for (let i = 0; i < BASE_SUPPLIERS; i++) {
    const leaveWeek = churn ? geometricWeeks(leaveRng, CHURN_HAZARD_PER_WEEK) : Infinity;
    suppliers.push(makeSupplier(rng, { id: supplierId(i), firstWeek: 0, leaveWeek }));
  }
  const receivers: Receiver[] = [];
  for (let i = 0; i < BASE_RECEIVERS; i++) {
    receivers.push({
      id: `RCV-${String(i + 1).padStart(4, '0')}`,
      country: 'FI',
      popularity: popularity(rng),
      habitKey: Math.floor(rng() * 2 ** 32),
    });
  }
  return { seed, receivers, suppliers };
}

export function supplierId(index: number): string {
  return `SUP-${String(index + 1).padStart(5, '0')}`;
}
