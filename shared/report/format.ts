/**
 * Number and time formatting for the report. Locale-free on purpose: the same data gives the same
 * bytes on every machine, and a UTC timestamp reads the same to everyone on the team.
 */
export function formatUtc(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Fixed decimals, or an en dash for missing/non-finite values. */
export function formatNumber(value: number | null | undefined, decimals: number): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return value.toFixed(decimals);
}

/** Grams with precision that suits their size (0.0042 g and 12 kg both stay readable). */
export function formatGrams(grams: number | null | undefined): string {
  if (grams === null || grams === undefined || !Number.isFinite(grams)) return '–';
  const abs = Math.abs(grams);
  if (abs === 0) return '0';
  if (abs < 0.01) return grams.toExponential(2);
  if (abs < 10) return grams.toFixed(3);
  if (abs < 1000) return grams.toFixed(1);
  return grams.toFixed(0);
}

export function formatKwh(kwh: number | null | undefined): string {
  if (kwh === null || kwh === undefined || !Number.isFinite(kwh)) return '–';
  if (kwh !== 0 && Math.abs(kwh) < 0.001) return kwh.toExponential(2);
  return kwh.toFixed(4);
}

/** Accuracy 0..1 shown as a percentage with two decimals. */
export function formatPercent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return '–';
  return `${(fraction * 100).toFixed(2)} %`;
}
