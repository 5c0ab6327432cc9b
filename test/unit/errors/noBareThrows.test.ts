import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Production code throws the typed errors of shared/errors (a code and `retryable` that the retry
 * layers and the orchestrator branch on), never a bare Error: a bare `throw new Error` is retried
 * blindly or reported as INTERNAL. Found on the syntax tree, so comments and strings that mention
 * it do not count, and `throw Error(...)` does.
 */
const REPO_ROOT = path.resolve(__dirname, '../../..');
const PRODUCTION_DIRS = ['shared', 'functions', 'containers'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/**
 * `file:line: throw …` for every throw of a bare `Error`. (RangeError and SyntaxError stay allowed:
 * the model's hot loops use them for broken arguments, and parsers for malformed text they convert.)
 */
function bareThrows(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isThrowStatement(node)) {
      const thrown = node.expression;
      const callee =
        ts.isNewExpression(thrown) || ts.isCallExpression(thrown) ? thrown.expression : undefined;
      if (callee && ts.isIdentifier(callee) && callee.text === 'Error') {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        found.push(`${fileName}:${line + 1}: ${node.getText().split('\n')[0]}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('typed errors in production code', () => {
  it('finds a bare throw however it is written, and ignores comments, strings and typed errors', () => {
    const sample = [
      '// throw new Error("in a comment")',
      'const text = "throw new Error(\'in a string\')";',
      'function a() { throw new Error("bare"); }',
      'function b() { throw Error("called"); }',
      'function c() { throw new RangeError("a broken argument"); }',
      'function d() { throw new ValidationError("typed"); }',
      'function e() { if (x) {\n  throw new Error(\n    "nested",\n  );\n} }',
    ].join('\n');
    expect(bareThrows('sample.ts', sample)).toStrictEqual([
      'sample.ts:3: throw new Error("bare");',
      'sample.ts:4: throw Error("called");',
      'sample.ts:8: throw new Error(',
    ]);
  });

  it(`has no bare throw in ${PRODUCTION_DIRS.join(', ')}`, () => {
    const files = PRODUCTION_DIRS.flatMap((dir) => sourceFiles(path.join(REPO_ROOT, dir)));
    expect(files.length).toBeGreaterThan(100);
    const found = files.flatMap((file) =>
      bareThrows(path.relative(REPO_ROOT, file), readFileSync(file, 'utf8')),
    );
    expect(found).toStrictEqual([]);
  });
});
