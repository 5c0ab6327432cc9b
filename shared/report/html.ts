import { createHash } from 'node:crypto';

/**
 * Escaping for the two places report text ends up: HTML text/attributes and JSON inside a
 * <script> element. Batch names, reasons and provenance come from uploads and settings, so every
 * one of them goes through here; nothing is trusted to be "just a name".
 */
const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * JSON that can sit inside <script type="application/json"> without ending it early: `<`, `>` and
 * `&` become \u escapes (so `</script>` or `<!--` in a batch name stay inert), and U+2028/U+2029
 * are escaped because older JS engines treat them as line ends.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** CSP source expression allowing exactly this inline script and no other. */
export function cspScriptHash(scriptText: string): string {
  return `'sha256-${createHash('sha256').update(scriptText, 'utf8').digest('base64')}'`;
}
