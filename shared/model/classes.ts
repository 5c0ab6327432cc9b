/**
 * Class keys are VAT rates as strings (vatClassOf). They sort numerically so "5.5" comes before
 * "24", and anything non-numeric (never produced by vatClassOf) sorts after, by text.
 */
export function compareClasses(a: string, b: string): number {
  const x = Number(a);
  const y = Number(b);
  const xNumeric = a.trim() !== '' && Number.isFinite(x);
  const yNumeric = b.trim() !== '' && Number.isFinite(y);
  if (xNumeric && yNumeric) return x - y || (a < b ? -1 : a > b ? 1 : 0);
  if (xNumeric !== yNumeric) return xNumeric ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedClasses(classes: Iterable<string>): string[] {
  return [...new Set(classes)].sort(compareClasses);
}
