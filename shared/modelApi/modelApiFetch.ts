import https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { ConfigError } from '../errors';
import type { ServerPin } from './serverPin';

/**
 * How the Function side calls a model API, by where it runs:
 * - https with a pin (ACI): trusts exactly that certificate: the handshake validates against the
 *   pinned PEM as the only anchor, and the peer's SHA-256 fingerprint must equal the pin. The host
 *   name is not checked, because the pin is stronger than a name (an ACI name is known only after
 *   the certificate was made). Never `rejectUnauthorized: false`.
 * - https without a pin (Container Apps ingress): the public roots, as any client.
 * - plain http: only to a loopback host (the local launcher); anything else is refused before a
 *   byte is sent, so a key or invoice rows never cross a network unencrypted.
 */
export type ModelApiFetch = (url: string, init?: ModelApiRequestInit) => Promise<Response>;

export interface ModelApiRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

export function modelApiFetch(pin: ServerPin | null | undefined): ModelApiFetch {
  return async (url, init = {}) => {
    const target = new URL(url);
    if (target.protocol === 'http:') {
      if (!LOOPBACK_HOSTS.has(target.hostname)) {
        throw new ConfigError(
          `Refusing plain http to the model API at ${target.host}: only a loopback model API may be called without TLS`,
          [{ key: 'MODEL_API_HOST', reason: 'a remote model API must serve https' }],
        );
      }
      return fetch(target, init);
    }
    if (target.protocol !== 'https:') {
      throw new ConfigError(`Unsupported model API URL scheme ${target.protocol}`, [
        { key: 'MODEL_API_HOST', reason: 'the model API is called over https (or http on loopback)' },
      ]);
    }
    return pin ? pinnedRequest(target, init, pin) : fetch(target, init);
  };
}

/** The handshake's identity check for a pinned certificate: its fingerprint, not a host name. */
export function checkPinned(pin: ServerPin): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) =>
    cert.fingerprint256 === pin.sha256Fingerprint
      ? undefined
      : Object.assign(
          new Error(
            `model API certificate ${cert.fingerprint256} is not the pinned ${pin.sha256Fingerprint}`,
          ),
          { code: 'ERR_MODEL_API_CERT_PIN' },
        );
}

function pinnedRequest(target: URL, init: ModelApiRequestInit, pin: ServerPin): Promise<Response> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      target,
      {
        method: init.method ?? 'GET',
        headers: init.headers,
        ca: pin.certificatePem,
        checkServerIdentity: checkPinned(pin),
        // Its own connection: a pooled socket may have been verified against another pin.
        agent: false,
        ...(init.signal ? { signal: init.signal } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
              headers.append(name, v);
            }
          }
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, statusText: response.statusMessage, headers }));
        });
      },
    );
    request.on('error', reject);
    request.end(init.body);
  });
}
