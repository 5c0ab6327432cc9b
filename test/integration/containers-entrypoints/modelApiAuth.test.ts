import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { parseApiSettings } from '../../../containers/model-api/apiSettings';
import type { ServingModel } from '../../../containers/model-api/server';
import { startLoopbackServer, type LoopbackServer } from '../../support/loopbackHttp';
import { selfSignedCertificate } from '../../support/selfSignedCertificate';
import { invoiceRows, smallServingModel } from './invoiceFixtures';
import { serve, TEST_API_KEY } from './modelApiClient';

const ISSUER = 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0';
const AUDIENCE = 'api://green-e2e-ml-model-api';

type Signer = Awaited<ReturnType<typeof generateKeyPair>>;

let serving: ServingModel;
let jwks: LoopbackServer;
let tenantKey: Signer;
let strangerKey: Signer;
let publicJwk: JWK;

beforeAll(async () => {
  serving = await smallServingModel('auth-v1');
  tenantKey = await generateKeyPair('RS256');
  strangerKey = await generateKeyPair('RS256');
  publicJwk = { ...(await exportJWK(tenantKey.publicKey)), kid: 'tenant-1', alg: 'RS256', use: 'sig' };
  jwks = await startLoopbackServer();
  jwks.route('GET', '/discovery/v2.0/keys', { body: { keys: [publicJwk] } });
});

afterAll(async () => {
  await jwks.close();
});

function token(
  claims: Record<string, unknown> = {},
  options: { key?: Signer; kid?: string; expiresIn?: string; issuer?: string; audience?: string } = {},
): Promise<string> {
  return new SignJWT({ oid: 'caller-object-id', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'tenant-1' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setSubject('orchestrator')
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '10m')
    .sign((options.key ?? tenantKey).privateKey);
}

const row = (): Record<string, unknown> => {
  const { vatRatePercent: _label, ...features } = invoiceRows(1, 3)[0];
  return features;
};

describe('model API authentication', () => {
  it('key mode: every call but /health needs the key; refusals carry WWW-Authenticate and no data', async () => {
    const api = await serve(serving);
    try {
      const health = await api.call('GET', '/health', { token: null });
      expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
      expect(Object.keys(health.body)).toEqual(['status']);

      for (const [method, url] of [
        ['GET', '/model'],
        ['GET', '/metrics/load'],
        ['POST', '/predict'],
        ['GET', '/anything'],
      ] as const) {
        for (const credential of [null, 'wrong-key', TEST_API_KEY.slice(0, -1), `${TEST_API_KEY}x`]) {
          const answer = await api.call(method, url, {
            token: credential,
            body: method === 'POST' ? row() : undefined,
          });
          expect({ url, credential, status: answer.status }).toEqual({ url, credential, status: 401 });
          expect(answer.headers['www-authenticate']).toMatch(/^Bearer realm="model-api"/);
          expect(JSON.stringify(answer.body)).not.toMatch(/auth-v1|vat-rate|holdout/);
        }
      }
      expect((await api.call('POST', '/predict', { body: row() })).status).toBe(200);
      expect((await api.call('GET', '/model')).body).toMatchObject({ versionId: 'auth-v1' });
    } finally {
      await api.close();
    }
  });

  it('entra mode: accepts an RS256 token from the tenant and refuses every forged or stale one', async () => {
    const api = await serve(serving, {
      auth: {
        kind: 'entra',
        issuer: ISSUER,
        audience: AUDIENCE,
        jwksUri: `${jwks.baseUrl}/discovery/v2.0/keys`,
      },
    });
    try {
      expect((await api.call('POST', '/predict', { body: row(), token: await token() })).status).toBe(200);

      const hs256 = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', kid: 'tenant-1' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode('a-shared-secret-that-is-long-enough-for-hs256'));
      const [header, payload] = (await token()).split('.');
      const refused: [string, string][] = [
        ['expired', await token({}, { expiresIn: '-5m' })],
        ['other audience', await token({}, { audience: 'api://someone-else' })],
        ['other issuer', await token({}, { issuer: 'https://login.example.com/evil' })],
        ['signed by a stranger under our kid', await token({}, { key: strangerKey })],
        ['unknown kid', await token({}, { key: strangerKey, kid: 'stranger' })],
        ['HS256', hs256],
        ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`],
        ['tampered payload', `${header}.${Buffer.from('{"aud":"x"}').toString('base64url')}.sig`],
        ['not a JWT', 'hello'],
      ];
      for (const [name, bearer] of refused) {
        const answer = await api.call('POST', '/predict', { body: row(), token: bearer });
        expect({ name, status: answer.status }).toEqual({ name, status: 401 });
        expect(answer.headers['www-authenticate']).toContain('Bearer');
      }
      // The key set was fetched from the tenant's endpoint, not trusted from the token.
      expect(jwks.requestsTo('/discovery/v2.0/keys').length).toBeGreaterThan(0);
    } finally {
      await api.close();
    }
  });

  it('serves HTTPS only when given a certificate', async () => {
    const { keyPem, certPem } = selfSignedCertificate();
    const api = await serve(serving, {
      transport: { kind: 'https', cert: Buffer.from(certPem), key: Buffer.from(keyPem) },
      ca: certPem,
    });
    try {
      expect((await api.call('POST', '/predict', { body: row() })).status).toBe(200);
      // Plain HTTP to the TLS port gets no answer an HTTP client can read as a response.
      await expect(fetch(`http://127.0.0.1:${api.port}/health`)).rejects.toThrow();
    } finally {
      await api.close();
    }
  });
});

describe('model API auth and TLS settings', () => {
  const base = { HOST: '0.0.0.0' };

  it('refuses to start without an auth mode, with a short key, or anonymous off loopback', () => {
    const problems = (env: Record<string, string>): string[] => {
      try {
        parseApiSettings(env);
        return [];
      } catch (error) {
        return (error as { problems: { key: string }[] }).problems.map((p) => p.key);
      }
    };
    expect(problems(base)).toEqual(['MODEL_API_AUTH_MODE']);
    expect(problems({ ...base, MODEL_API_AUTH_MODE: 'key', MODEL_API_KEY: 'short' })).toEqual([
      'MODEL_API_KEY',
    ]);
    expect(problems({ ...base, MODEL_API_AUTH_MODE: 'insecure-local-dev' })).toEqual(['MODEL_API_AUTH_MODE']);
    expect(problems({ HOST: '127.0.0.1', MODEL_API_AUTH_MODE: 'insecure-local-dev' })).toEqual([]);
    expect(problems({ ...base, MODEL_API_AUTH_MODE: 'entra', MODEL_API_TOKEN_ISSUER: ISSUER })).toEqual([
      'MODEL_API_TOKEN_AUDIENCE',
      'MODEL_API_JWKS_URI',
    ]);
    expect(
      problems({
        ...base,
        MODEL_API_AUTH_MODE: 'entra',
        MODEL_API_TOKEN_ISSUER: ISSUER,
        MODEL_API_TOKEN_AUDIENCE: AUDIENCE,
        MODEL_API_JWKS_URI: 'http://keys.example.com/keys',
      }),
    ).toEqual(['MODEL_API_JWKS_URI']);
  });

  it('never puts the key in an error', () => {
    const secret = 'super-secret-but-too-short';
    expect(() => parseApiSettings({ MODEL_API_AUTH_MODE: 'key', MODEL_API_KEY: secret })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(secret) }),
    );
  });

  it('reads both TLS files or refuses', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'model-api-tls-'));
    try {
      const { keyPem, certPem } = selfSignedCertificate();
      writeFileSync(path.join(dir, 'cert.pem'), certPem);
      writeFileSync(path.join(dir, 'key.pem'), keyPem);
      const env = { MODEL_API_AUTH_MODE: 'key', MODEL_API_KEY: TEST_API_KEY };
      const tls = parseApiSettings({
        ...env,
        MODEL_API_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
        MODEL_API_TLS_KEY_FILE: path.join(dir, 'key.pem'),
      });
      expect(tls.transport).toEqual({ kind: 'https', cert: Buffer.from(certPem), key: Buffer.from(keyPem) });
      expect(() => parseApiSettings({ ...env, MODEL_API_TLS_CERT_FILE: path.join(dir, 'cert.pem') })).toThrow(
        /MODEL_API_TLS_KEY_FILE: set both TLS files or neither/,
      );
      expect(() =>
        parseApiSettings({
          ...env,
          MODEL_API_TLS_CERT_FILE: path.join(dir, 'missing.pem'),
          MODEL_API_TLS_KEY_FILE: path.join(dir, 'key.pem'),
        }),
      ).toThrow(/MODEL_API_TLS_CERT_FILE: cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
