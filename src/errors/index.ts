/**
 * One error type for everything a user can get wrong or run into. The code is
 * stable (scripts match on it), the status is what the REST API answers, and the
 * message says what happened and, where it helps, what to do.
 */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_name'
  | 'unknown_field'
  | 'too_large'
  | 'not_found'
  | 'conflict'
  | 'in_use'
  | 'locked'
  | 'forbidden'
  | 'unauthorized'
  | 'unavailable'
  | 'timeout'
  | 'internal';

const statusOf: Record<ErrorCode, number> = {
  bad_request: 400,
  invalid_name: 400,
  unknown_field: 400,
  too_large: 413,
  not_found: 404,
  conflict: 409,
  in_use: 409,
  locked: 423,
  forbidden: 403,
  unauthorized: 401,
  unavailable: 503,
  // Another party did not answer in time (the store deciding a container start).
  timeout: 504,
  internal: 500,
};

export class HushError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'HushError';
    this.code = code;
    this.status = statusOf[code];
  }
}

export function isHushError(err: unknown): err is HushError {
  return err instanceof HushError;
}
