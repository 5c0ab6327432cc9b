import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, errors as joseErrors } from 'jose';
import type { ApiAuth } from './apiSettings';

/** Who made a call, as far as the API needs to know. */
export type Caller = { kind: 'authenticated'; subject: string } | { kind: 'anonymous' };

export type AuthOutcome = { ok: true; caller: Caller } | { ok: false; reason: string };

export interface Authenticator {
  readonly scheme: 'Bearer' | 'none';
  check(authorization: string | undefined): Promise<AuthOutcome>;
}

/** Tokens and keys longer than this are refused unread: a real Entra token is a few KB. */
const MAX_CREDENTIAL_CHARS = 16 * 1024;

function bearerOf(
  authorization: string | undefined,
): { ok: true; token: string } | { ok: false; reason: string } {
  if (!authorization) return { ok: false, reason: 'missing Authorization header' };
  if (authorization.length > MAX_CREDENTIAL_CHARS) return { ok: false, reason: 'credential too long' };
  const match = /^Bearer +(\S+)$/i.exec(authorization);
  if (!match) return { ok: false, reason: 'expected Authorization: Bearer <token>' };
  return { ok: true, token: match[1] };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The key is compared as SHA-256 digests with timingSafeEqual: equal-length buffers whatever the
 * caller sends, so neither the key's length nor its prefix leaks through response time.
 */
function keyAuthenticator(key: string): Authenticator {
  const expected = digest(key);
  return {
    scheme: 'Bearer',
    check: async (authorization) => {
      const bearer = bearerOf(authorization);
      if (!bearer.ok) return bearer;
      return timingSafeEqual(digest(bearer.token), expected)
        ? { ok: true, caller: { kind: 'authenticated', subject: 'api-key' } }
        : { ok: false, reason: 'invalid key' };
    },
  };
}

/**
 * Entra ID access tokens: RS256 only (so an `alg: none` or HS256 token signed with the public key
 * is refused), issuer and audience exact, expiry and not-before with a minute of clock skew. The
 * signing keys come from the tenant's JWKS and are cached; an unknown `kid` refetches at most
 * every 30 s, so forged kids cannot make the API hammer the key endpoint.
 */
function entraAuthenticator(auth: Extract<ApiAuth, { kind: 'entra' }>): Authenticator {
  const keys = createRemoteJWKSet(new URL(auth.jwksUri), {
    timeoutDuration: 5000,
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  });
  return {
    scheme: 'Bearer',
    check: async (authorization) => {
      const bearer = bearerOf(authorization);
      if (!bearer.ok) return bearer;
      try {
        const { payload } = await jwtVerify(bearer.token, keys, {
          issuer: auth.issuer,
          audience: auth.audience,
          algorithms: ['RS256'],
          clockTolerance: 60,
          requiredClaims: ['exp'],
        });
        return {
          ok: true,
          caller: { kind: 'authenticated', subject: String(payload.sub ?? payload.oid ?? 'token') },
        };
      } catch (error) {
        return { ok: false, reason: tokenFailure(error) };
      }
    },
  };
}

/** jose's error codes name the rule that failed; its messages may quote claims, so only codes leave. */
function tokenFailure(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'token expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `token claim ${error.claim} rejected`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'token signed by an unknown key';
  if (error instanceof joseErrors.JWKSTimeout) return 'signing keys unavailable';
  if (error instanceof joseErrors.JOSEError) return `token rejected (${error.code})`;
  return 'token rejected';
}

export function createAuthenticator(auth: ApiAuth): Authenticator {
  switch (auth.kind) {
    case 'key':
      return keyAuthenticator(auth.key);
    case 'entra':
      return entraAuthenticator(auth);
    case 'insecure-local-dev':
      return { scheme: 'none', check: async () => ({ ok: true, caller: { kind: 'anonymous' } }) };
  }
}
