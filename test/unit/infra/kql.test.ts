import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EVENT, METRIC } from '../../../shared/telemetry/telemetry';

/**
 * Every KQL query the Portal runs (workbook items and the alert rules) is parsed and analysed by
 * Microsoft's Kusto language service against the Application Insights tables declared once below,
 * and every metric or event name a query reads is one the code emits.
 */

// The language service is a Bridge.NET bundle that installs itself on `global`.
/* eslint-disable @typescript-eslint/no-require-imports */
require('@kusto/language-service-next/bridge.min.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');
/* eslint-enable @typescript-eslint/no-require-imports */

interface KustoDiagnostic {
  Severity: string;
  Code: string;
  Message: string;
}
interface KustoGlobal {
  Kusto: {
    Language: {
      Symbols: {
        TableSymbol: { $ctor4: new (name: string, columns: unknown[]) => unknown };
        ColumnSymbol: new (name: string, type: unknown) => unknown;
        DatabaseSymbol: {
          $ctor3: new (name: string, alt: null, members: unknown[], open: boolean) => unknown;
        };
        ClusterSymbol: { $ctor1: new (name: string, databases: unknown[], open: boolean) => unknown };
        ScalarTypes: Record<string, unknown>;
      };
      GlobalState: { Default: { WithCluster(c: unknown): { WithDatabase(d: unknown): unknown } } };
      KustoCode: {
        ParseAndAnalyze(
          text: string,
          globals: unknown,
        ): {
          GetDiagnostics(): { Count: number; getItem(i: number): KustoDiagnostic };
        };
      };
    };
  };
}
const Kusto = (global as unknown as KustoGlobal).Kusto.Language;
const Symbols = Kusto.Symbols;
const T = Symbols.ScalarTypes;

/** Application Insights (classic names, as a workbook on the component queries them). */
const APP_INSIGHTS_SCHEMA: Record<string, [string, string][]> = {
  customMetrics: [
    ['timestamp', 'DateTime'],
    ['name', 'String'],
    ['value', 'Real'],
    ['valueCount', 'Int'],
    ['valueSum', 'Real'],
    ['valueMin', 'Real'],
    ['valueMax', 'Real'],
    ['valueStdDev', 'Real'],
    ['customDimensions', 'Dynamic'],
    ['operation_Id', 'String'],
    ['cloud_RoleName', 'String'],
  ],
  customEvents: [
    ['timestamp', 'DateTime'],
    ['name', 'String'],
    ['itemCount', 'Int'],
    ['customDimensions', 'Dynamic'],
    ['customMeasurements', 'Dynamic'],
    ['operation_Id', 'String'],
    ['cloud_RoleName', 'String'],
  ],
  traces: [
    ['timestamp', 'DateTime'],
    ['message', 'String'],
    ['severityLevel', 'Int'],
    ['customDimensions', 'Dynamic'],
    ['operation_Id', 'String'],
    ['cloud_RoleName', 'String'],
  ],
  requests: [
    ['timestamp', 'DateTime'],
    ['name', 'String'],
    ['success', 'Bool'],
    ['resultCode', 'String'],
    ['duration', 'Real'],
    ['customDimensions', 'Dynamic'],
    ['operation_Id', 'String'],
    ['cloud_RoleName', 'String'],
  ],
  dependencies: [
    ['timestamp', 'DateTime'],
    ['name', 'String'],
    ['type', 'String'],
    ['target', 'String'],
    ['success', 'Bool'],
    ['duration', 'Real'],
    ['customDimensions', 'Dynamic'],
    ['operation_Id', 'String'],
  ],
  exceptions: [
    ['timestamp', 'DateTime'],
    ['type', 'String'],
    ['outerMessage', 'String'],
    ['customDimensions', 'Dynamic'],
    ['operation_Id', 'String'],
  ],
};

function globals(): unknown {
  const tables = Object.entries(APP_INSIGHTS_SCHEMA).map(
    ([name, columns]) =>
      new Symbols.TableSymbol.$ctor4(
        name,
        columns.map(([column, type]) => new Symbols.ColumnSymbol(column, T[type])),
      ),
  );
  const database = new Symbols.DatabaseSymbol.$ctor3('appinsights', null, tables, false);
  const cluster = new Symbols.ClusterSymbol.$ctor1('appinsights', [database], false);
  return Kusto.GlobalState.Default.WithCluster(cluster).WithDatabase(database);
}

function diagnostics(query: string): string[] {
  const code = Kusto.KustoCode.ParseAndAnalyze(query, globals());
  const list = code.GetDiagnostics();
  const out: string[] = [];
  for (let i = 0; i < list.Count; i += 1) {
    const d = list.getItem(i);
    out.push(`${d.Severity} ${d.Code}: ${d.Message}`);
  }
  return out;
}

const REPO_ROOT = path.resolve(__dirname, '../../..');
const workbook = JSON.parse(readFileSync(path.join(REPO_ROOT, 'infra/workbook.json'), 'utf8')) as {
  version: string;
  items: WorkbookItem[];
};
interface WorkbookItem {
  type: number;
  name: string;
  content: {
    query?: string;
    queryType?: number;
    resourceType?: string;
    version?: string;
    items?: WorkbookItem[];
  };
}

/** Workbook parameters are substituted by the Portal before the query runs. */
function substituteParameters(query: string): string {
  return query
    .replace(/\{TimeRange:start\}/g, 'datetime(2026-01-01)')
    .replace(/\{TimeRange:end\}/g, 'datetime(2026-01-15)')
    .replace(/\{TimeRange\}/g, '> ago(14d)');
}

function queryItems(items: WorkbookItem[]): WorkbookItem[] {
  return items.flatMap((item) => [
    ...(item.type === 3 ? [item] : []),
    ...queryItems(item.content.items ?? []),
  ]);
}

const alertQueries = readdirSync(path.join(REPO_ROOT, 'infra/alerts'))
  .filter((f) => f.endsWith('.kql'))
  .map((f) => ({
    name: `alerts/${f}`,
    query: readFileSync(path.join(REPO_ROOT, 'infra/alerts', f), 'utf8'),
  }));
const workbookQueries = queryItems(workbook.items).map((item) => ({
  name: `workbook/${item.name}`,
  query: substituteParameters(item.content.query ?? ''),
}));
const ALL_QUERIES = [...workbookQueries, ...alertQueries];

describe('KQL of the workbook and alert rules', () => {
  it('the language service reports errors for a broken query (the check can fail)', () => {
    expect(diagnostics('customMetrics | where nme == "x"').join('\n')).toMatch(/KS142/);
    expect(diagnostics('customMetrics | summarize by').length).toBeGreaterThan(0);
  });

  it.each(ALL_QUERIES.map((q) => [q.name, q.query]))('%s: 0 syntax and 0 semantic errors', (_name, query) => {
    expect(query.trim().length).toBeGreaterThan(0);
    expect(diagnostics(query)).toEqual([]);
  });

  it('checks every query the Portal runs', () => {
    expect(workbookQueries.length).toBeGreaterThanOrEqual(9);
    expect(alertQueries.length).toBeGreaterThanOrEqual(1);
    console.log(
      `KQL checked: ${workbookQueries.length} workbook queries, ${alertQueries.length} alert queries`,
    );
  });

  it('every metric and event name queried is one the code emits', () => {
    const emitted = new Set<string>([...Object.values(METRIC), ...Object.values(EVENT)]);
    const queried = new Set<string>();
    for (const { query } of ALL_QUERIES) {
      for (const m of query.matchAll(/\bname\s*(?:==|=~)\s*"([^"]+)"/g)) queried.add(m[1]);
      for (const m of query.matchAll(/\bname\s+in\s*\(([^)]*)\)/g)) {
        for (const n of m[1].matchAll(/"([^"]+)"/g)) queried.add(n[1]);
      }
    }
    expect(queried.size).toBeGreaterThan(0);
    expect([...queried].filter((name) => !emitted.has(name))).toEqual([]);
  });

  it('the workbook has the fields the Portal requires', () => {
    expect(workbook.version).toBe('Notebook/1.0');
    expect(Array.isArray(workbook.items)).toBe(true);
    for (const item of queryItems(workbook.items)) {
      expect({
        item: item.name,
        queryType: item.content.queryType,
        resourceType: item.content.resourceType,
      }).toEqual({
        item: item.name,
        queryType: 0,
        resourceType: 'microsoft.insights/components',
      });
      expect(item.content.version).toBe('KqlItem/1.0');
    }
  });
});
