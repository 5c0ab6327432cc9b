import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { z } from 'zod';
import { ModelInvalidError } from '../errors';

/** Lower-case hex SHA-256, as `sha256sum` prints it. */
export const SHA256_HEX_SCHEMA = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A model artifact whose bytes do not hash to what the registry recorded for it (the version
 * record, or the champion pointer that chose it): overwritten or corrupted after it was stored.
 * Never served, never warm-started from; not retryable, the bytes will not change by themselves.
 */
export class ArtifactIntegrityError extends ModelInvalidError {
  constructor(
    readonly label: string,
    readonly recordedIn: 'version record' | 'champion pointer',
    readonly expectedSha256: string | null,
    readonly actualSha256: string,
  ) {
    super(
      expectedSha256 === null
        ? `Model artifact ${label} has no SHA-256 in its ${recordedIn} (stored before integrity checks); it is not loaded — retrain or re-register it`
        : `Model artifact ${label} does not match the SHA-256 in its ${recordedIn} (expected ${expectedSha256}, got ${actualSha256}); it was changed after it was stored and is not loaded`,
      { details: { label, recordedIn, expectedSha256, actualSha256 } },
    );
  }
}

/** Passes bytes through unchanged while hashing them; `digest()` once the stream has ended. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}
