/**
 * One small error hierarchy for the whole system. Every error carries a stable `code` so callers
 * (trigger adapters, the CLI, the orchestrator) can branch on it without string matching, and a
 * `retryable` flag so the retry layers know whether trying again can help.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'VALIDATION_FAILED'
  | 'BATCH_UNREADABLE'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PROVIDER_HTTP'
  | 'PROVIDER_RESPONSE_INVALID'
  | 'PROVIDER_UNAUTHORIZED'
  | 'TIMEOUT'
  | 'NO_DATA'
  | 'LAUNCH_FAILED'
  | 'CONTAINER_FAILED'
  | 'MODEL_INVALID'
  | 'POLICY_VIOLATION'
  | 'ACTIVITY_FAILED'
  | 'INTERNAL';

export interface GreenMlErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  details?: Record<string, unknown>;
}

export class GreenMlError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: GreenMlErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }

  /** A log- and JSON-safe view: never includes the cause's stack or request headers. */
  toJSON(): {
    name: string;
    code: ErrorCode;
    message: string;
    retryable: boolean;
    details: Record<string, unknown>;
  } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      details: this.details,
    };
  }
}

export class ConfigError extends GreenMlError {
  constructor(
    message: string,
    readonly problems: readonly { key: string; reason: string }[],
  ) {
    super('CONFIG_INVALID', message, { details: { problems } });
  }
}

/** Input at a boundary (blob, HTTP body, CLI argument, provider payload) did not match its schema. */
export class ValidationError extends GreenMlError {
  constructor(
    message: string,
    readonly issues: readonly { path: string; message: string }[] = [],
    options: GreenMlErrorOptions = {},
  ) {
    super('VALIDATION_FAILED', message, { ...options, details: { ...options.details, issues } });
  }
}

/** A batch that is not a batch at all: binary, wrong header, empty, truncated compression. */
export class BatchUnreadableError extends GreenMlError {
  constructor(
    message: string,
    readonly reason:
      'empty' | 'binary' | 'bad-header' | 'bad-encoding' | 'truncated' | 'unsupported-format' | 'too-large',
    options: GreenMlErrorOptions = {},
  ) {
    super('BATCH_UNREADABLE', message, { ...options, details: { ...options.details, reason } });
  }
}

export class NotFoundError extends GreenMlError {
  constructor(message: string, options: GreenMlErrorOptions = {}) {
    super('NOT_FOUND', message, options);
  }
}

/** An optimistic-concurrency write lost the race (ETag mismatch, blob already exists, lease held). */
export class ConflictError extends GreenMlError {
  constructor(message: string, options: GreenMlErrorOptions = {}) {
    super('CONFLICT', message, options);
  }
}

export class ProviderError extends GreenMlError {
  constructor(
    code: 'PROVIDER_HTTP' | 'PROVIDER_RESPONSE_INVALID' | 'PROVIDER_UNAUTHORIZED' | 'TIMEOUT' | 'NO_DATA',
    message: string,
    readonly provider: string,
    options: GreenMlErrorOptions & { statusCode?: number } = {},
  ) {
    super(code, message, {
      ...options,
      details: { ...options.details, provider, statusCode: options.statusCode },
    });
    this.statusCode = options.statusCode;
  }
  readonly statusCode?: number;
}

export class LaunchError extends GreenMlError {
  constructor(message: string, options: GreenMlErrorOptions = {}) {
    super('LAUNCH_FAILED', message, options);
  }
}

export class ContainerFailedError extends GreenMlError {
  constructor(
    message: string,
    readonly exitCode: number | null,
    options: GreenMlErrorOptions = {},
  ) {
    super('CONTAINER_FAILED', message, { ...options, details: { ...options.details, exitCode } });
  }
}

export class ModelInvalidError extends GreenMlError {
  constructor(message: string, options: GreenMlErrorOptions = {}) {
    super('MODEL_INVALID', message, options);
  }
}

/** An orchestrator's activity call failed for good (not retryable, or out of attempts). */
export class ActivityFailedError extends GreenMlError {
  constructor(
    readonly activity: string,
    readonly failure: { code: string; message: string; retryable: boolean },
    readonly attempts: number,
  ) {
    super(
      'ACTIVITY_FAILED',
      `${activity} failed after ${attempts} attempt${attempts === 1 ? '' : 's'} [${failure.code}]: ${failure.message}`,
      { retryable: false, details: { activity, attempts, failureCode: failure.code } },
    );
  }
}

/** A broken invariant of our own code or host (not bad input, not a remote failure). */
export class InternalError extends GreenMlError {
  constructor(message: string, options: GreenMlErrorOptions = {}) {
    super('INTERNAL', message, options);
  }
}

export function isGreenMlError(value: unknown): value is GreenMlError {
  return value instanceof GreenMlError;
}

/** Message of anything thrown, for logs and quarantine reasons. */
export function describeError(value: unknown): string {
  if (value instanceof Error) return value.message;
  return String(value);
}
