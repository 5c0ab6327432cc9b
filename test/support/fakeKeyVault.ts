import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { selfSignedCertificate } from './selfSignedCertificate';

/**
 * A loopback Key Vault data plane (secrets, api-version 7.4) and a loopback App Service
 * managed-identity token endpoint (`IDENTITY_ENDPOINT`, api-version 2019-08-01), so the real
 * @azure/identity credential and the real Azure SDK pipeline talk to them over sockets.
 *
 * Key Vault: GET /secrets/{name}[/{version}]?api-version=7.4 with `Authorization: Bearer <token>`
 * answers `{value, id, contentType, attributes}`; without a valid token 401 with Key Vault's
 * `WWW-Authenticate` challenge; an unknown secret 404 `SecretNotFound`. HTTPS with a throwaway
 * certificate, because the bearer-token policy refuses plain http.
 */
export interface FakeKeyVaultFault {
  status: number;
  code: string;
  retryAfterSeconds?: number;
  /** How many requests fail this way (default 1). */
  times?: number;
  /** A body that is not Key Vault's error shape (for malformed answers). */
  rawBody?: string;
}

export interface FakeKeyVault {
  readonly vaultUrl: string;
  readonly caPem: string;
  /** Stores a new version of a secret; returns its 32-hex version id. */
  setSecret(name: string, value: string): string;
  /** Faults served, in order, before normal answers resume. */
  fail(fault: FakeKeyVaultFault): void;
  /** Only these bearer tokens are accepted. */
  readonly acceptedTokens: Set<string>;
  readonly requests: { path: string; apiVersion: string | null; authorization: string | undefined }[];
  close(): Promise<void>;
}

export async function startFakeKeyVault(): Promise<FakeKeyVault> {
  const { keyPem, certPem } = selfSignedCertificate();
  const secrets = new Map<string, { version: string; value: string; created: number }[]>();
  const faults: FakeKeyVaultFault[] = [];
  const acceptedTokens = new Set<string>();
  const requests: FakeKeyVault['requests'] = [];
  let vaultUrl = '';

  const send = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(text);
  };

  const server = https.createServer({ key: keyPem, cert: certPem }, (req, res) => {
    req.resume();
    const url = new URL(req.url ?? '/', vaultUrl);
    requests.push({
      path: url.pathname,
      apiVersion: url.searchParams.get('api-version'),
      authorization: req.headers.authorization,
    });
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined || !acceptedTokens.has(token)) {
      send(
        res,
        401,
        { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
        {
          'www-authenticate':
            'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", resource="https://vault.azure.net"',
        },
      );
      return;
    }
    const fault = faults[0];
    if (fault) {
      fault.times = (fault.times ?? 1) - 1;
      if (fault.times <= 0) faults.shift();
      send(
        res,
        fault.status,
        fault.rawBody ?? { error: { code: fault.code, message: `fake Key Vault fault ${fault.code}` } },
        fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) },
      );
      return;
    }
    const match = /^\/secrets\/([0-9A-Za-z-]+)(?:\/([0-9a-f]{32}))?$/.exec(url.pathname);
    if (req.method !== 'GET' || !match || url.searchParams.get('api-version') !== '7.4') {
      send(res, 400, { error: { code: 'BadParameter', message: 'unsupported request' } });
      return;
    }
    const versions = secrets.get(match[1]) ?? [];
    const found = match[2] ? versions.find((v) => v.version === match[2]) : versions.at(-1);
    if (!found) {
      send(res, 404, {
        error: {
          code: 'SecretNotFound',
          message: `A secret with (name/id) ${match[1]} was not found in this key vault.`,
        },
      });
      return;
    }
    send(res, 200, {
      value: found.value,
      id: `${vaultUrl}/secrets/${match[1]}/${found.version}`,
      contentType: 'Bearer key of the model API',
      attributes: {
        enabled: true,
        created: found.created,
        updated: found.created,
        recoveryLevel: 'Recoverable',
        recoverableDays: 7,
      },
      tags: {},
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  vaultUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    vaultUrl,
    caPem: certPem,
    acceptedTokens,
    requests,
    setSecret(name, value) {
      const version = randomBytes(16).toString('hex');
      const list = secrets.get(name) ?? [];
      list.push({ version, value, created: Math.floor(Date.now() / 1000) });
      secrets.set(name, list);
      return version;
    },
    fail(fault) {
      faults.push({ ...fault });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * App Service's managed-identity endpoint as @azure/identity (MSAL) calls it:
 * GET {IDENTITY_ENDPOINT}?resource=…&api-version=2019-08-01 with `X-IDENTITY-HEADER`.
 */
export interface FakeTokenEndpoint {
  readonly endpoint: string;
  readonly identityHeader: string;
  /** Resources tokens were asked for, in order. */
  readonly issuedFor: string[];
  /** Issued tokens, in order. */
  readonly tokens: string[];
  close(): Promise<void>;
}

export async function startFakeTokenEndpoint(
  onIssue: (token: string) => void = () => undefined,
): Promise<FakeTokenEndpoint> {
  const identityHeader = randomBytes(12).toString('hex');
  const issuedFor: string[] = [];
  const tokens: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (
      req.headers['x-identity-header'] !== identityHeader ||
      url.searchParams.get('api-version') !== '2019-08-01'
    ) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error: 'invalid_request', error_description: 'bad identity header or api-version' }),
      );
      return;
    }
    const resource = url.searchParams.get('resource') ?? '';
    const token = `tok-${randomBytes(16).toString('hex')}`;
    issuedFor.push(resource);
    tokens.push(token);
    onIssue(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        access_token: token,
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource,
        token_type: 'Bearer',
        client_id: '11111111-2222-3333-4444-555555555555',
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/msi/token`,
    identityHeader,
    issuedFor,
    tokens,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
