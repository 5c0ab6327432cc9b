import { z } from 'zod';
import { ValidationError } from '../errors';

/** Turns zod issues into `path: message` pairs that name exactly what was wrong. */
export function describeIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({
    path: issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.'),
    message: issue.message,
  }));
}

/**
 * Validates a value at a boundary and throws a ValidationError whose message says what was being
 * read (`what`) and every offending path, so a bad blob or HTTP body never fails with a bare zod dump.
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = describeIssues(result.error);
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  throw new ValidationError(`Invalid ${what}: ${summary}`, issues);
}

/** JSON.parse that reports malformed text as a ValidationError instead of a SyntaxError. */
export function parseJsonWith<S extends z.ZodType>(schema: S, text: string, what: string): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ValidationError(`Invalid ${what}: not JSON (${(cause as Error).message})`, [], { cause });
  }
  return parseWith(schema, value, what);
}
