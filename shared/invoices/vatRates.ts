/**
 * VAT rates the synthetic invoices are labelled with. Real rates, as facts, with sources:
 * - Finland: Finnish Tax Administration, "Rates of VAT" (vero.fi/en/businesses-and-corporations/
 *   taxes-and-charges/vat/rates-of-vat) and "The general VAT rate is 25.5% as of 1 September 2024"
 *   (…/rates-of-vat/new-vat-rate-from-1-september-2024--instructions-for-vat-reporting): general 24 %
 *   until 2024-08-31 and 25.5 % from 2024-09-01, applied by delivery date; 14 % groceries and
 *   restaurant/meal services; 10 % books, medicines, passenger transport, accommodation, cultural and
 *   sports events, newspapers and periodicals; 0 % for exempt supplies (financial and insurance
 *   services, health care, letting of premises unless the landlord opted to be VAT-liable).
 *   Deliberately not modelled: the 2025-01-01 move of most 10 % items to 14 % (vero.fi, "Changes to VAT
 *   rates as of 1 January 2025"), so `vat-reform` isolates one concept drift.
 * - Other EU member states (2024 rates), from the European Commission's table "VAT rates applied in
 *   the Member States of the European Union" (taxation-customs.ec.europa.eu): SE 25/12/6, DE 19/7
 *   (restaurant meals back at 19 % from 2024-01-01), EE 22/9, NL 21/9, DK 25, FR 20/10/5.5,
 *   PL 23/8/5, IE 23/13.5/9. EU_LOCAL_RATES keeps one representative rate per category, so it is
 *   approximate where a country splits a category (e.g. some cultural events are exempt).
 * Booking rules (how a Finnish receiver books a purchase under the EU place-of-supply rules):
 * - domestic purchase: the Finnish rate of the goods/service category;
 * - intra-EU B2B goods and general-rule services: reverse charge, booked with 0 % on the invoice;
 * - services used where they are performed (hotel, restaurant, passenger transport, event tickets)
 *   bought from a supplier in another EU state: that state's local rate, no reverse charge;
 * - non-EU services: reverse charge, 0 %; non-EU goods: 0 % on the invoice (import VAT is paid to
 *   Customs separately and is not part of the supplier's invoice).
 */
export type VatCategory =
  | 'general'
  | 'food'
  | 'restaurant'
  | 'books'
  | 'medicine'
  | 'passenger-transport'
  | 'accommodation'
  | 'culture-sport'
  | 'newspapers'
  | 'exempt';

export type RateTable = Readonly<Record<VatCategory, number>>;

export const FI_GENERAL_RATE_CHANGE_DATE = '2024-09-01';

export const FI_RATES_UNTIL_2024_08_31: RateTable = {
  general: 24,
  food: 14,
  restaurant: 14,
  books: 10,
  medicine: 10,
  'passenger-transport': 10,
  accommodation: 10,
  'culture-sport': 10,
  newspapers: 10,
  exempt: 0,
};

export const FI_RATES_FROM_2024_09_01: RateTable = { ...FI_RATES_UNTIL_2024_08_31, general: 25.5 };

export const SE_RATES: RateTable = {
  general: 25,
  food: 12,
  restaurant: 12,
  accommodation: 12,
  books: 6,
  newspapers: 6,
  'passenger-transport': 6,
  'culture-sport': 6,
  medicine: 25, // prescription medicines are zero-rated, over-the-counter ones 25 %; B2B purchases are OTC
  exempt: 0,
};

/** Categories whose place of supply is where they are performed, so a foreign EU supplier charges its own VAT. */
export const LOCALLY_TAXED: ReadonlySet<VatCategory> = new Set([
  'restaurant',
  'accommodation',
  'passenger-transport',
  'culture-sport',
]);

/** Local rates of other EU states for the locally taxed categories (2024). */
export const EU_LOCAL_RATES: Readonly<
  Record<
    string,
    Readonly<Record<'restaurant' | 'accommodation' | 'passenger-transport' | 'culture-sport', number>>
  >
> = {
  SE: { restaurant: 12, accommodation: 12, 'passenger-transport': 6, 'culture-sport': 6 },
  DE: { restaurant: 19, accommodation: 7, 'passenger-transport': 7, 'culture-sport': 7 },
  EE: { restaurant: 22, accommodation: 9, 'passenger-transport': 22, 'culture-sport': 22 },
  NL: { restaurant: 9, accommodation: 9, 'passenger-transport': 9, 'culture-sport': 9 },
  DK: { restaurant: 25, accommodation: 25, 'passenger-transport': 0, 'culture-sport': 25 },
  FR: { restaurant: 10, accommodation: 10, 'passenger-transport': 10, 'culture-sport': 5.5 },
  PL: { restaurant: 8, accommodation: 8, 'passenger-transport': 8, 'culture-sport': 8 },
  IE: { restaurant: 13.5, accommodation: 13.5, 'passenger-transport': 0, 'culture-sport': 9 },
};

export const EU_COUNTRIES: ReadonlySet<string> = new Set([
  'AT',
  'BE',
  'BG',
  'CY',
  'CZ',
  'DE',
  'DK',
  'EE',
  'ES',
  'FI',
  'FR',
  'GR',
  'HR',
  'HU',
  'IE',
  'IT',
  'LT',
  'LU',
  'LV',
  'MT',
  'NL',
  'PL',
  'PT',
  'RO',
  'SE',
  'SI',
  'SK',
]);

/** Finnish rates in force on a date; `frozen` keeps the pre-reform table (worlds without the reform). */
export function finnishRates(isoDate: string, regime: 'historical' | 'frozen'): RateTable {
  if (regime === 'frozen') return FI_RATES_UNTIL_2024_08_31;
  return isoDate >= FI_GENERAL_RATE_CHANGE_DATE ? FI_RATES_FROM_2024_09_01 : FI_RATES_UNTIL_2024_08_31;
}

/** The distinct rates of a table, for picking a plausible wrong booking. */
export function distinctRates(table: RateTable): number[] {
  return [...new Set(Object.values(table))];
}
