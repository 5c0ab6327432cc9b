import { parseApiSettings } from '../../../containers/model-api/apiSettings';
import { modelApiCredentials } from '../../../shared/modelApi/credentials';

describe('model API credentials for the Functions side', () => {
  it('gives local runs one random key per run, as a secure variable the API accepts', () => {
    const first = modelApiCredentials('local');
    const again = modelApiCredentials('local');
    expect(again).toEqual(first);
    expect(first.environment).toEqual({ MODEL_API_AUTH_MODE: 'key' });
    expect(Object.keys(first.secureEnvironment)).toEqual(['MODEL_API_KEY']);
    expect(first.headers.authorization).toBe(`Bearer ${first.secureEnvironment.MODEL_API_KEY}`);
    // What the launcher passes is exactly what the container needs to start in key mode.
    const settings = parseApiSettings({ ...first.environment, ...first.secureEnvironment });
    expect(settings.auth).toEqual({ kind: 'key', key: first.secureEnvironment.MODEL_API_KEY });
    // Nothing in the plain part: only secure variables are kept out of logs and ARM answers.
    expect(JSON.stringify(first.environment)).not.toContain(first.secureEnvironment.MODEL_API_KEY);
  });

  it('refuses a per-process key for hosts where activities run on other instances', () => {
    expect(() => modelApiCredentials('aci')).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('MODEL_API_KEY_SECRET_URI'),
      }),
    );
  });
});
