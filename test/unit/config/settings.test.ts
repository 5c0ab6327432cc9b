import { ConfigError } from '../../../shared/errors';
import { loadSettings, redactedSettings, settingDescriptions, SETTINGS_SCHEMA } from '../../../shared/config';

const base = { DataStorage: 'UseDevelopmentStorage=true' };

describe('loadSettings', () => {
  it('applies safe defaults when only storage is set', () => {
    const s = loadSettings(base);
    expect(s.CARBON_PROVIDER).toBe('trace');
    expect(s.CONTAINER_LAUNCHER).toBe('local');
    expect(s.ALLOWED_REGIONS).toContain('swedencentral');
    expect(s.FOREST_TREES).toBe(50);
    expect(s.PUE).toBeCloseTo(1.185);
  });

  it('names every bad key and why in one error', () => {
    let caught: unknown;
    try {
      loadSettings({ ...base, FOREST_TREES: 'many', PUE: '0.5', ALLOWED_REGIONS: 'westeurope,marsnorth' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const keys = (caught as ConfigError).problems.map((p) => p.key).sort();
    expect(keys).toEqual(['ALLOWED_REGIONS', 'FOREST_TREES', 'PUE']);
    expect((caught as ConfigError).message).toMatch(/marsnorth|unknown Azure region/);
  });

  it('refuses regions outside the data-residency rule', () => {
    expect(() =>
      loadSettings({ ...base, ALLOWED_REGIONS: 'westeurope,eastus', DATA_RESIDENCY: 'EU' }),
    ).toThrow(/eastus outside DATA_RESIDENCY=EU/);
    expect(
      loadSettings({ ...base, ALLOWED_REGIONS: 'westeurope,eastus', DATA_RESIDENCY: 'ANY' }).ALLOWED_REGIONS,
    ).toEqual(['westeurope', 'eastus']);
  });

  it('requires provider credentials for the provider chosen', () => {
    expect(() => loadSettings({ ...base, CARBON_PROVIDER: 'electricitymaps' })).toThrow(
      /ELECTRICITYMAPS_API_TOKEN/,
    );
    expect(() => loadSettings({ ...base, CONTAINER_LAUNCHER: 'aci' })).toThrow(
      /AZURE_SUBSCRIPTION_ID.*ACI_RESOURCE_GROUP/,
    );
  });

  it('requires some way to reach storage', () => {
    expect(() => loadSettings({})).toThrow(/DataStorage/);
    expect(() =>
      loadSettings({
        DataStorage__blobServiceUri: 'https://acct.blob.core.windows.net',
        DataStorage__tableServiceUri: 'https://acct.table.core.windows.net',
      }),
    ).not.toThrow();
  });

  it('treats blank values as unset', () => {
    expect(loadSettings({ ...base, MODEL_NAME: '  ' }).MODEL_NAME).toBe('vat-rate');
  });

  it('never prints secrets', () => {
    const s = loadSettings({
      ...base,
      CARBON_PROVIDER: 'electricitymaps',
      ELECTRICITYMAPS_API_TOKEN: 'tok-secret-123',
    });
    const text = JSON.stringify(redactedSettings(s));
    expect(text).not.toContain('tok-secret-123');
    expect(text).not.toContain('UseDevelopmentStorage');
  });

  it('describes every setting', () => {
    const descriptions = settingDescriptions();
    for (const key of Object.keys(SETTINGS_SCHEMA.shape)) {
      expect(descriptions[key as keyof typeof descriptions]).toMatch(/\w{3}/);
    }
  });
});

describe('README settings table', () => {
  it('lists exactly the settings of the schema, each with its description', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require('node:fs') as typeof import('node:fs');
    const readme = fs.readFileSync(require.resolve('../../../README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| `([A-Za-z0-9_]+)` +\|[^|]*\|([^|]*)\|$/gm)].map((m) => ({
      key: m[1],
      description: m[2].trim(),
    }));
    const descriptions = settingDescriptions();
    expect(rows.map((r) => r.key).sort()).toEqual(Object.keys(SETTINGS_SCHEMA.shape).sort());
    for (const row of rows) {
      expect(row.description).toBe(descriptions[row.key as keyof typeof descriptions]);
    }
  });
});
