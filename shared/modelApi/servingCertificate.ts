import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import type { Settings } from '../config';
import { defaultCredential } from './credentials';
import type { ServerPin } from './serverPin';
import { ProviderError, ValidationError } from '../errors';
import {
  parseKeyVaultSecretUri,
  readKeyVaultSecret,
  type KeyVaultReaderOptions,
  type KeyVaultSecretUri,
} from './keyVaultSecret';

/**
 * The certificate a model API on ACI serves (ACI has no TLS of its own, so the container does).
 * Either a Key Vault certificate the team manages (MODEL_API_TLS_CERT_SECRET_URI, e.g. for a custom
 * domain), or, without it, a self-signed certificate made for each launch. Either way the Function
 * side trusts exactly that certificate (its SHA-256 fingerprint is pinned): no public CA, no
 * hostname, no other server can stand in for it.
 *
 * Where the private key lives: generated (or read from Key Vault) in the launching activity's
 * memory, sent once in the ARM PUT as an ACI secret volume, and from then on only in that group
 * (ARM never returns secret volume contents). It is never an activity output, so never in the
 * Durable history, never in a log, never in an app setting or a plain container variable.
 */
export interface ServerCertificate {
  /** Leaf first, then any chain (public). */
  readonly certificatePem: string;
  /** PKCS#8 PEM (secret). */
  readonly privateKeyPem: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

/** The pin of the leaf (first) certificate of a PEM chain. */
export function pinOf(certificatePem: string): ServerPin {
  const leaf = pemBlocks(certificatePem).find((b) => b.label === 'CERTIFICATE');
  if (!leaf) {
    throw new ValidationError('Invalid server certificate: no CERTIFICATE block in the PEM', [
      { path: 'certificatePem', message: 'no CERTIFICATE block' },
    ]);
  }
  return { certificatePem: leaf.pem, sha256Fingerprint: new X509Certificate(leaf.pem).fingerprint256 };
}

function pemBlocks(text: string): { label: string; pem: string }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], pem: `${m[0].replace(/\r\n/g, '\n')}\n` }));
}

/** A self-signed certificate outlives any serving period (a re-plan or retrain re-launches sooner). */
export const SELF_SIGNED_VALID_DAYS = 400;
const DAY_MS = 86_400_000;

/**
 * A fresh RSA-2048 key (made by Node's OpenSSL) and a self-signed certificate for it (encoded and
 * signed by node-forge: Node cannot issue X.509). The names are informational: a client trusts the
 * pin, since an ACI host name (label.hash.region.azurecontainer.io) is known only after creation.
 */
export async function selfSignedServerCertificate(
  commonName: string,
  nowMs: number = Date.now(),
): Promise<ServerCertificate> {
  // Loaded on first use: forge is large and only a launch on ACI needs it.
  const forge = (await import('node-forge')).default;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  // Positive, 16 random bytes: unique per launch as RFC 5280 asks.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  // A few minutes back for clocks behind ours.
  cert.validity.notBefore = new Date(nowMs - 5 * 60_000);
  cert.validity.notAfter = new Date(nowMs + SELF_SIGNED_VALID_DAYS * DAY_MS);
  const name = [{ name: 'commonName', value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: commonName }] },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());
  return {
    // forge writes CRLF; LF like every other PEM here, so pins compare byte for byte.
    certificatePem: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/**
 * A Key Vault certificate's secret (content type application/x-pem-file): the private key and the
 * chain, leaf first. Checked here so a wrong secret fails the launch with a reason instead of an
 * API that never starts: key and leaf must match, and the leaf must be valid now. Messages never
 * include key material.
 */
export function parsePemCertificateBundle(
  text: string,
  label: string,
  nowMs = Date.now(),
): ServerCertificate {
  const blocks = pemBlocks(text);
  const keys = blocks.filter((b) => /PRIVATE KEY$/.test(b.label));
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
  const invalid = (why: string): ProviderError =>
    new ProviderError(
      'PROVIDER_RESPONSE_INVALID',
      `${label} is not a usable TLS certificate: ${why}`,
      'key-vault',
    );
  if (keys.length !== 1 || certs.length === 0) {
    throw invalid(
      `expected one private key and at least one certificate in PEM, found ${keys.length} and ${certs.length} ` +
        '(create the Key Vault certificate with content type application/x-pem-file)',
    );
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  let leaf: X509Certificate;
  try {
    privateKey = createPrivateKey(keys[0].pem);
    leaf = new X509Certificate(certs[0].pem);
  } catch {
    throw invalid('the PEM does not parse');
  }
  if (!leaf.checkPrivateKey(privateKey))
    throw invalid('the private key does not belong to the first certificate');
  if (Date.parse(leaf.validTo) <= nowMs || Date.parse(leaf.validFrom) > nowMs) {
    throw invalid(`the certificate is valid only from ${leaf.validFrom} to ${leaf.validTo}`);
  }
  return {
    certificatePem: certs.map((c) => c.pem).join(''),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export interface ServingCertificateSourceOptions {
  /** Default: DefaultAzureCredential (the Function App's managed identity on Azure). */
  credential?: TokenCredential;
  keyVault?: Omit<KeyVaultReaderOptions, 'credential'>;
  now?: () => number;
}

/** Where each ACI model-API launch gets its certificate: Key Vault when configured, else a new self-signed one. */
export class ServingCertificateSource {
  private readonly uri: KeyVaultSecretUri | undefined;
  private credential: TokenCredential | undefined;

  constructor(
    settings: Pick<Settings, 'MODEL_API_TLS_CERT_SECRET_URI'>,
    private readonly options: ServingCertificateSourceOptions = {},
  ) {
    this.uri =
      settings.MODEL_API_TLS_CERT_SECRET_URI === undefined
        ? undefined
        : parseKeyVaultSecretUri(settings.MODEL_API_TLS_CERT_SECRET_URI, 'MODEL_API_TLS_CERT_SECRET_URI');
    this.credential = options.credential;
  }

  /** Read per launch, not cached: a renewed Key Vault certificate reaches the next launch. */
  async forLaunch(groupName: string): Promise<ServerCertificate> {
    const now = this.options.now?.() ?? Date.now();
    if (!this.uri) return selfSignedServerCertificate(groupName, now);
    const credential = this.credential ?? (this.credential = await defaultCredential());
    const secret = await readKeyVaultSecret(this.uri, { ...this.options.keyVault, credential });
    return parsePemCertificateBundle(secret.value, `Key Vault secret ${secret.id}`, now);
  }
}

let shared: { uri: string; source: ServingCertificateSource } | undefined;

/** The process's certificate source for these settings; options (a credential, a test CA) replace it. */
export function servingCertificateSource(
  settings: Pick<Settings, 'MODEL_API_TLS_CERT_SECRET_URI'>,
  options?: ServingCertificateSourceOptions,
): ServingCertificateSource {
  const uri = settings.MODEL_API_TLS_CERT_SECRET_URI ?? '';
  if (options || shared?.uri !== uri)
    shared = { uri, source: new ServingCertificateSource(settings, options) };
  return shared.source;
}
