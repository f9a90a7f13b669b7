import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';

/** One problem in a document, with the dotted path of the field it is about. */
export interface FieldError {
  field: string;
  message: string;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });

/**
 * Compiles a JSON Schema into a checker that fills in defaults (mutating the value, like the API server does) and
 * returns the problems with dotted field paths under `root` ("spec.eventStorage.secondsPerBucket").
 */
export function compileChecker(schema: object, root: string): (value: unknown) => FieldError[] {
  const validate: ValidateFunction = ajv.compile(schema);
  return (value) => (validate(value) ? [] : toFieldErrors(validate.errors ?? [], root));
}

export function toFieldErrors(errors: ErrorObject[], root: string): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const e of errors) {
    // oneOf reports every branch's failures plus its own; the branch errors say what is actually wrong.
    if (e.keyword === 'oneOf' || e.keyword === 'if') continue;
    let path = e.instancePath.split('/').slice(1).map(unescapePointer);
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      path = [...path, String((e.params as { additionalProperty: string }).additionalProperty)];
      message = 'is not a known field';
    } else if (e.keyword === 'required') {
      path = [...path, String((e.params as { missingProperty: string }).missingProperty)];
      message = 'is required';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'const') {
      message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    }
    const field = [root, ...path].filter((p) => p !== '').join('.');
    const key = `${field}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ field, message });
    }
  }
  return out;
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function describeErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}
