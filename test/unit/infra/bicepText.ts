import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Just enough Bicep reading for the infra tests (no Bicep CLI here): top-level blocks, object
 * literal keys, params with their decorators. Strings ('...', '''...''') are skipped while
 * counting braces, since interpolations (`${x}`) would otherwise unbalance them.
 */

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const INFRA_DIR = path.join(REPO_ROOT, 'infra');

export function readRepoFile(relativePath: string): string {
  return readFileSync(path.join(REPO_ROOT, relativePath), 'utf8');
}

/** Every .bicep file under infra/, as paths relative to the repository root. */
export function bicepFiles(dir: string = INFRA_DIR): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...bicepFiles(full));
    else if (entry.name.endsWith('.bicep')) out.push(path.relative(REPO_ROOT, full));
  }
  return out.sort();
}

/** Index just past the string literal starting at `start` (which holds a quote). */
function skipString(text: string, start: number): number {
  if (text.startsWith("'''", start)) {
    const end = text.indexOf("'''", start + 3);
    return end === -1 ? text.length : end + 3;
  }
  let i = start + 1;
  while (i < text.length) {
    if (text[i] === '\\') i += 2;
    else if (text[i] === "'") return i + 1;
    else i += 1;
  }
  return i;
}

/** Index of the brace closing the one at `openIndex`. */
export function matchingBrace(text: string, openIndex: number): number {
  let depth = 0;
  let i = openIndex;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "'") {
      i = skipString(text, i);
      continue;
    }
    if (ch === '/' && text[i + 1] === '/') {
      const eol = text.indexOf('\n', i);
      i = eol === -1 ? text.length : eol;
      continue;
    }
    if (ch === '{' || ch === '[' || ch === '(') depth += 1;
    if (ch === '}' || ch === ']' || ch === ')') {
      depth -= 1;
      if (depth === 0) return i;
    }
    i += 1;
  }
  throw new Error(`unbalanced brace at ${openIndex}`);
}

/** `key: value` pairs at the top level of an object literal body (between its braces). */
export function objectEntries(body: string): Map<string, string> {
  const entries = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    const rest = body.slice(i);
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*|'[^']*')\s*:\s*/.exec(rest);
    if (!match) {
      const eol = body.indexOf('\n', i);
      i = eol === -1 ? body.length : eol + 1;
      continue;
    }
    const key = match[1].replace(/^'|'$/g, '');
    let j = i + match[0].length;
    const valueStart = j;
    // A value ends at the newline that is not inside a string or a nested bracket.
    while (j < body.length && body[j] !== '\n') {
      const ch = body[j];
      if (ch === "'") j = skipString(body, j);
      else if (ch === '{' || ch === '[' || ch === '(') j = matchingBrace(body, j) + 1;
      else j += 1;
    }
    entries.set(key, body.slice(valueStart, j).trim());
    i = j + 1;
  }
  return entries;
}

/** The object literal assigned to `var <name> = {...}`. */
export function varObject(text: string, name: string): Map<string, string> {
  const match = new RegExp(`^var ${name} = \\{`, 'm').exec(text);
  if (!match) throw new Error(`var ${name} = { ... } not found`);
  const open = match.index + match[0].length - 1;
  return objectEntries(text.slice(open + 1, matchingBrace(text, open)));
}

/** The text of a `var <name> = '''...'''` multi-line string. */
export function varMultilineString(text: string, name: string): string {
  const match = new RegExp(`^var ${name} = '''([\\s\\S]*?)'''`, 'm').exec(text);
  if (!match) throw new Error(`var ${name} = '''...''' not found`);
  return match[1];
}

export interface BicepParam {
  name: string;
  type: string;
  defaultValue?: string;
  allowed?: string[];
  secure: boolean;
}

/** Params with their default expression, @allowed values and @secure marker. */
export function params(text: string): Map<string, BicepParam> {
  const out = new Map<string, BicepParam>();
  const lines = text.split('\n');
  let decorators = '';
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i].trim();
    if (line.startsWith('@')) {
      // A decorator may span lines (@allowed([...]), @metadata({...})): read until parens balance.
      let chunk = line;
      let balance = parenBalance(line);
      while (balance > 0 && i + 1 < lines.length) {
        i += 1;
        chunk += `\n${lines[i].trim()}`;
        balance += parenBalance(lines[i]);
      }
      decorators += `${chunk}\n`;
      continue;
    }
    const param = /^param (\w+) (\w+)(?: = (.*))?$/.exec(line);
    if (param) {
      const allowedBlock = /@allowed\(\[([\s\S]*?)\]\)/.exec(decorators);
      const allowed = allowedBlock
        ? [...allowedBlock[1].matchAll(/'([^']*)'|(-?\d+)/g)].map((m) => m[1] ?? m[2])
        : undefined;
      out.set(param[1], {
        name: param[1],
        type: param[2],
        ...(param[3] === undefined ? {} : { defaultValue: param[3].trim() }),
        ...(allowed ? { allowed } : {}),
        secure: decorators.includes('@secure()'),
      });
      decorators = '';
    } else if (line !== '' && !line.startsWith('//')) {
      decorators = '';
    }
  }
  return out;
}

function parenBalance(line: string): number {
  const withoutStrings = line.replace(/'(?:[^'\\]|\\.)*'/g, "''");
  return (withoutStrings.match(/\(/g) ?? []).length - (withoutStrings.match(/\)/g) ?? []).length;
}

/** A Bicep string literal's value, or undefined for any other expression. */
export function literal(expression: string | undefined): string | undefined {
  if (expression === undefined) return undefined;
  const match = /^'([^'$]*)'$/.exec(expression.trim());
  return match ? match[1] : undefined;
}

export interface TopLevelBlock {
  file: string;
  kind: 'resource' | 'module';
  symbol: string;
  target: string;
  condition?: string;
  body: Map<string, string>;
  text: string;
}

/** `resource x '<type>' = {...}` and `module x '<path>' = [if (...)] {...}` declarations. */
export function topLevelBlocks(file: string, text: string): TopLevelBlock[] {
  const out: TopLevelBlock[] = [];
  const declaration = /^(resource|module) (\w+) '([^']+)'(?: existing)? = (?:if \((.*)\) )?\{/gm;
  for (const match of text.matchAll(declaration)) {
    const open = (match.index ?? 0) + match[0].length - 1;
    const close = matchingBrace(text, open);
    out.push({
      file,
      kind: match[1] as 'resource' | 'module',
      symbol: match[2],
      target: match[3],
      ...(match[4] === undefined ? {} : { condition: match[4] }),
      body: objectEntries(text.slice(open + 1, close)),
      text: text.slice(match.index ?? 0, close + 1),
    });
  }
  return out;
}

/** Nested object entries of a block property written as `name: { ... }`. */
export function nested(value: string | undefined): Map<string, string> {
  if (value === undefined || !value.startsWith('{')) return new Map();
  return objectEntries(value.slice(1, matchingBrace(value, 0)));
}

/**
 * ABAC `StringLike` / `StringStartsWith` semantics on a blob path, enough to check a condition's
 * patterns against the paths the code writes.
 */
export function abacMatches(
  operator: 'StringLike' | 'StringStartsWith',
  pattern: string,
  value: string,
): boolean {
  if (operator === 'StringStartsWith') return value.startsWith(pattern);
  const regex = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return regex.test(value);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
