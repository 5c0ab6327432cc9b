/**
 * Azure region -> Electricity Maps grid zone, with the jurisdiction each region's data stays in.
 *
 * Source: Cloud Carbon Footprint `packages/azure/src/lib/AzureRegions.ts`
 * (AZURE_MAPPED_REGIONS_TO_ELECTRICITY_MAPS_ZONES, Apache-2.0), corrected where CCF is wrong or silent
 * (spaincentral, polandcentral, italynorth were missing; westus2/westus3 are not PACE). Cities from the
 * GSF Carbon Aware SDK `azure-regions.json`. `traceZone` names the bundled hourly trace used as a
 * proxy when the exact sub-zone has none (Sweden and Norway traces are national aggregates).
 */
export type Jurisdiction = 'EU' | 'EEA' | 'UK' | 'CH' | 'US';

export interface AzureRegionInfo {
  readonly region: string;
  readonly city: string;
  readonly zone: string;
  readonly traceZone: string | null;
  readonly jurisdiction: Jurisdiction;
  /** ISO 3166 alpha-3, for the Ember country-average fallback in CO2.js. */
  readonly countryAlpha3: string;
  /** UK Carbon Intensity API region id (only for GB regions). */
  readonly ukRegionId?: number;
}

export const AZURE_REGIONS: readonly AzureRegionInfo[] = [
  {
    region: 'westeurope',
    city: 'Amsterdam',
    zone: 'NL',
    traceZone: 'NL',
    jurisdiction: 'EU',
    countryAlpha3: 'NLD',
  },
  {
    region: 'northeurope',
    city: 'Dublin',
    zone: 'IE',
    traceZone: null,
    jurisdiction: 'EU',
    countryAlpha3: 'IRL',
  },
  {
    region: 'swedencentral',
    city: 'Gävle',
    zone: 'SE-SE3',
    traceZone: 'SE',
    jurisdiction: 'EU',
    countryAlpha3: 'SWE',
  },
  {
    region: 'germanywestcentral',
    city: 'Frankfurt',
    zone: 'DE',
    traceZone: 'DE',
    jurisdiction: 'EU',
    countryAlpha3: 'DEU',
  },
  {
    region: 'germanynorth',
    city: 'Berlin',
    zone: 'DE',
    traceZone: 'DE',
    jurisdiction: 'EU',
    countryAlpha3: 'DEU',
  },
  {
    region: 'francecentral',
    city: 'Paris',
    zone: 'FR',
    traceZone: 'FR',
    jurisdiction: 'EU',
    countryAlpha3: 'FRA',
  },
  {
    region: 'francesouth',
    city: 'Marseille',
    zone: 'FR',
    traceZone: 'FR',
    jurisdiction: 'EU',
    countryAlpha3: 'FRA',
  },
  {
    region: 'spaincentral',
    city: 'Madrid',
    zone: 'ES',
    traceZone: 'ES',
    jurisdiction: 'EU',
    countryAlpha3: 'ESP',
  },
  {
    region: 'polandcentral',
    city: 'Warsaw',
    zone: 'PL',
    traceZone: null,
    jurisdiction: 'EU',
    countryAlpha3: 'POL',
  },
  {
    region: 'italynorth',
    city: 'Milan',
    zone: 'IT-NO',
    traceZone: null,
    jurisdiction: 'EU',
    countryAlpha3: 'ITA',
  },
  {
    region: 'norwayeast',
    city: 'Oslo',
    zone: 'NO-NO1',
    traceZone: 'NO',
    jurisdiction: 'EEA',
    countryAlpha3: 'NOR',
  },
  {
    region: 'norwaywest',
    city: 'Stavanger',
    zone: 'NO-NO2',
    traceZone: 'NO',
    jurisdiction: 'EEA',
    countryAlpha3: 'NOR',
  },
  {
    region: 'uksouth',
    city: 'London',
    zone: 'GB',
    traceZone: 'GB',
    jurisdiction: 'UK',
    countryAlpha3: 'GBR',
    ukRegionId: 13,
  },
  {
    region: 'ukwest',
    city: 'Cardiff',
    zone: 'GB',
    traceZone: 'GB',
    jurisdiction: 'UK',
    countryAlpha3: 'GBR',
    ukRegionId: 7,
  },
  {
    region: 'switzerlandnorth',
    city: 'Zurich',
    zone: 'CH',
    traceZone: null,
    jurisdiction: 'CH',
    countryAlpha3: 'CHE',
  },
  {
    region: 'eastus',
    city: 'Virginia',
    zone: 'US-MIDA-PJM',
    traceZone: 'US-MIDA-PJM',
    jurisdiction: 'US',
    countryAlpha3: 'USA',
  },
  {
    region: 'eastus2',
    city: 'Virginia',
    zone: 'US-MIDA-PJM',
    traceZone: 'US-MIDA-PJM',
    jurisdiction: 'US',
    countryAlpha3: 'USA',
  },
  {
    region: 'westus',
    city: 'San Francisco',
    zone: 'US-CAL-CISO',
    traceZone: 'US-CAL-CISO',
    jurisdiction: 'US',
    countryAlpha3: 'USA',
  },
  {
    region: 'southcentralus',
    city: 'San Antonio',
    zone: 'US-TEX-ERCO',
    traceZone: 'US-TEX-ERCO',
    jurisdiction: 'US',
    countryAlpha3: 'USA',
  },
  {
    region: 'centralus',
    city: 'Iowa',
    zone: 'US-MIDW-MISO',
    traceZone: null,
    jurisdiction: 'US',
    countryAlpha3: 'USA',
  },
];

const BY_NAME = new Map(AZURE_REGIONS.map((r) => [r.region, r]));

export function findAzureRegion(region: string): AzureRegionInfo | undefined {
  return BY_NAME.get(region.toLowerCase());
}

/** Which jurisdictions each residency rule admits. EEA = EU plus Norway, Iceland, Liechtenstein. */
export const RESIDENCY_RULES = {
  EU: ['EU'],
  EEA: ['EU', 'EEA'],
  EUROPE: ['EU', 'EEA', 'UK', 'CH'],
  US: ['US'],
  ANY: ['EU', 'EEA', 'UK', 'CH', 'US'],
} as const satisfies Record<string, readonly Jurisdiction[]>;

export type ResidencyRule = keyof typeof RESIDENCY_RULES;

export function regionSatisfiesResidency(region: string, rule: ResidencyRule): boolean {
  const info = findAzureRegion(region);
  if (!info) return false;
  return (RESIDENCY_RULES[rule] as readonly Jurisdiction[]).includes(info.jurisdiction);
}
