import { z } from 'zod';

/**
 * What a client needs to trust one model API's certificate and nothing else (public; stored in the
 * serving record and passed between activities). See servingCertificate.ts for where it comes from.
 */
export const SERVER_PIN_SCHEMA = z.object({
  /** The leaf as PEM: the only trust anchor of a call to that API. */
  certificatePem: z.string().min(1).max(32_768),
  /** Upper-case hex pairs joined by ':', as Node's X509Certificate.fingerprint256 prints it. */
  sha256Fingerprint: z.string().regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
});
export type ServerPin = z.output<typeof SERVER_PIN_SCHEMA>;
