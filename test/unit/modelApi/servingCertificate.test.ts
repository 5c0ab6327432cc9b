import { X509Certificate, createPrivateKey } from 'node:crypto';
import {
  parsePemCertificateBundle,
  pinOf,
  selfSignedServerCertificate,
} from '../../../shared/modelApi/servingCertificate';
import { SERVER_PIN_SCHEMA } from '../../../shared/modelApi/serverPin';

const DAY_MS = 86_400_000;
const body = (pem: string): string => pem.split('\n')[1];

describe('model API server certificates', () => {
  it('makes a fresh self-signed server certificate per launch, valid beyond any serving period', async () => {
    const a = await selfSignedServerCertificate('api-run1');
    const b = await selfSignedServerCertificate('api-run1');
    const cert = new X509Certificate(a.certificatePem);
    expect(cert.checkPrivateKey(createPrivateKey(a.privateKeyPem))).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=api-run1');
    expect(cert.subjectAltName).toBe('DNS:api-run1');
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now() + 399 * DAY_MS);
    expect(a.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // Another launch, another key and serial: a pin never matches an earlier group.
    expect(b.privateKeyPem).not.toBe(a.privateKeyPem);
    expect(new X509Certificate(b.certificatePem).serialNumber).not.toBe(cert.serialNumber);
    const pin = pinOf(a.certificatePem);
    expect(SERVER_PIN_SCHEMA.parse(pin)).toStrictEqual({
      certificatePem: a.certificatePem,
      sha256Fingerprint: cert.fingerprint256,
    });
  });

  it('takes a Key Vault PEM bundle (key and chain, leaf first) and pins its leaf', async () => {
    const leaf = await selfSignedServerCertificate('models.example.com');
    const intermediate = await selfSignedServerCertificate('issuer.example.com');
    const parsed = parsePemCertificateBundle(
      `${leaf.privateKeyPem}${leaf.certificatePem}${intermediate.certificatePem}`,
      'secret x',
    );
    expect(parsed.certificatePem).toBe(`${leaf.certificatePem}${intermediate.certificatePem}`);
    expect(pinOf(parsed.certificatePem).sha256Fingerprint).toBe(
      new X509Certificate(leaf.certificatePem).fingerprint256,
    );
    expect(createPrivateKey(parsed.privateKeyPem).asymmetricKeyType).toBe('rsa');
  });

  it('refuses a bundle that would give an API that cannot start or cannot be trusted, without quoting the key', async () => {
    const now = Date.now();
    const good = await selfSignedServerCertificate('models.example.com', now);
    const other = await selfSignedServerCertificate('models.example.com', now);
    const expired = await selfSignedServerCertificate('models.example.com', now - 500 * DAY_MS);
    const cases: [string, RegExp, string][] = [
      [good.certificatePem, /found 0 and 1 .*application\/x-pem-file/, ''],
      [good.privateKeyPem, /found 1 and 0/, good.privateKeyPem],
      [`${other.privateKeyPem}${good.certificatePem}`, /private key does not belong/, other.privateKeyPem],
      [`${expired.privateKeyPem}${expired.certificatePem}`, /valid only from .* to /, expired.privateKeyPem],
      [
        `${good.privateKeyPem}${good.privateKeyPem}${good.certificatePem}`,
        /found 2 and 1/,
        good.privateKeyPem,
      ],
    ];
    for (const [text, message, key] of cases) {
      let error: unknown;
      try {
        parsePemCertificateBundle(text, 'Key Vault secret https://kv/secrets/tls/1', now);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({
        code: 'PROVIDER_RESPONSE_INVALID',
        message: expect.stringMatching(message),
      });
      if (key) expect(JSON.stringify(error) + String(error)).not.toContain(body(key));
    }
  });
});
