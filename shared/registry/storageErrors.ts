import { isRetryableStatus } from '../errors/classify';
import { RestError } from '@azure/storage-blob';
import { ConflictError, GreenMlError, NotFoundError, ProviderError } from '../errors';

/** What a failed blob call means for the registry, from its HTTP status and storage error code. */
export type BlobFailure =
  | { kind: 'not-found'; what: 'blob' | 'container' }
  | { kind: 'already-exists' }
  | { kind: 'condition-not-met' }
  | { kind: 'other'; statusCode: number | undefined; errorCode: string | undefined };

export function classifyBlobFailure(error: unknown): BlobFailure | null {
  if (!(error instanceof RestError)) return null;
  const errorCode = typeof error.code === 'string' ? error.code : undefined;
  if (error.statusCode === 404) {
    return { kind: 'not-found', what: errorCode === 'ContainerNotFound' ? 'container' : 'blob' };
  }
  // 409 BlobAlreadyExists answers `ifNoneMatch: '*'`; 412 ConditionNotMet answers `ifMatch`.
  if (error.statusCode === 409 && errorCode === 'BlobAlreadyExists') return { kind: 'already-exists' };
  if (error.statusCode === 412) return { kind: 'condition-not-met' };
  return { kind: 'other', statusCode: error.statusCode, errorCode };
}

/**
 * Turns a storage failure the caller did not expect into a typed error; a RestError without a status
 * is a network failure, so retryable. Only status and storage error code reach the message: the
 * RestError's request (with its authorisation header) stays in `cause`, which toJSON never serialises.
 */
export function storageError(error: unknown, action: string, containerName: string): Error {
  if (error instanceof GreenMlError) return error;
  const failure = classifyBlobFailure(error);
  // Not a storage response (e.g. the artifact's source stream failed): the original says it best.
  if (failure === null) return error instanceof Error ? error : new Error(String(error));
  switch (failure.kind) {
    case 'not-found':
      return failure.what === 'container'
        ? new NotFoundError(
            `Blob container "${containerName}" does not exist (create it with ensureContainer) while trying to ${action}`,
            { cause: error },
          )
        : new NotFoundError(`Not found while trying to ${action}`, { cause: error });
    case 'already-exists':
    case 'condition-not-met':
      return new ConflictError(`Concurrent change while trying to ${action}`, { cause: error });
    case 'other': {
      const status = failure.statusCode;
      const retryable = status === undefined || isRetryableStatus(status);
      return new ProviderError(
        'PROVIDER_HTTP',
        `Blob storage failed to ${action}: HTTP ${status ?? '?'} ${failure.errorCode ?? ''}`.trim(),
        'blob-storage',
        { cause: error, retryable, statusCode: status, details: { storageErrorCode: failure.errorCode } },
      );
    }
  }
}
