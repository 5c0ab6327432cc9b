import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSettings } from '../../../shared/config';
import { ConfigError } from '../../../shared/errors';
import { deployedPipeline, deployedPipelines } from '../../../shared/pipelines/deployedPipelines';

const base = { DataStorage: 'UseDevelopmentStorage=true' };

it('without a pipelines file the deployment runs the one MODEL_NAME pipeline', () => {
  const settings = loadSettings({ ...base, MODEL_NAME: 'vat-solo' });
  expect(deployedPipelines(settings).pipelines.map((p) => p.name)).toEqual(['vat-solo']);
  // A copy with another model name is another deployment, not the cached one.
  const other = { ...settings, MODEL_NAME: 'vat-other' };
  expect(deployedPipeline(other, 'vat-other').name).toBe('vat-other');
});

it('reads the pipelines file once per settings object and names the declared models on a miss', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployed-'));
  const file = path.join(dir, 'pipelines.json');
  fs.copyFileSync(path.resolve(__dirname, '../../../pipelines.sample.json'), file);
  const settings = loadSettings({ ...base, PIPELINES_FILE: file });
  expect(deployedPipelines(settings).pipelines.map((p) => p.name)).toEqual(['vat-rate', 'account-code']);
  fs.writeFileSync(file, 'not json');
  // Cached: a file changed under a running deployment does not change its pipelines mid-flight.
  expect(deployedPipeline(settings, 'account-code').label).toBe('accountCode');
  expect(() => deployedPipeline(settings, 'receiver')).toThrow(ConfigError);
  expect(() => deployedPipeline(settings, 'receiver')).toThrow(/declared: vat-rate, account-code/);
  fs.rmSync(dir, { recursive: true, force: true });
});
