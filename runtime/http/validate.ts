import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { fullFormats } from 'ajv-formats/dist/formats';
import { toFieldErrors } from '../../api/validate';
import { RequestError } from './errors';
import { openApiDocument, type SchemaName } from './openapi';

const ajv = new Ajv2020({ allErrors: false, strict: true, strictTypes: false });
addFormats(ajv);
/**
 * `date-time` as JSON Schema defines it, RFC 3339's date-time: "T" (either case) between date and time, the offset
 * "Z" or ±hh:mm. ajv-formats also admits a space and ±hhmm or ±hh, which other validators (and so a client checking
 * against this document) refuse, and ±hh JavaScript cannot even parse. Its checks of the values (days of the month,
 * leap seconds) still apply.
 */
const RFC3339_DATE_TIME = /^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$/;
const dateTime = fullFormats['date-time'] as {
  validate: (s: string) => boolean;
  compare: (a: string, b: string) => number | undefined;
};
ajv.addFormat('date-time', {
  type: 'string',
  validate: (s: string) => RFC3339_DATE_TIME.test(s) && dateTime.validate(s),
  compare: dateTime.compare,
});
// `components` is OpenAPI, not JSON Schema: declared so strict mode accepts it. The whole document is registered so the schemas' $refs (#/components/schemas/...) resolve inside it.
ajv.addVocabulary(['components']);
ajv.addSchema({ $id: 'tally-openapi', components: openApiDocument.components }, undefined, undefined, false);

const validators = new Map<SchemaName, (body: unknown) => void>();

/** A checker for one of the OpenAPI document's request schemas; throws an INVALID_ARGUMENT RequestError naming the field. */
export function requestValidator<T>(name: SchemaName): (body: unknown) => T {
  let check = validators.get(name);
  if (!check) {
    const validate = ajv.getSchema(`tally-openapi#/components/schemas/${name}`);
    if (!validate) throw new Error(`OpenAPI schema ${name} is missing`);
    check = (body: unknown) => {
      if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new RequestError('INVALID_ARGUMENT', 'the request body must be a JSON object');
      }
      if (!validate(body)) {
        const [first] = toFieldErrors(validate.errors ?? [], '');
        const field = first?.field || undefined;
        throw new RequestError(
          'INVALID_ARGUMENT',
          field ? `${field} ${first!.message}` : (first?.message ?? 'invalid request'),
          field,
        );
      }
    };
    validators.set(name, check);
  }
  const checker = check;
  return (body) => {
    checker(body);
    return body as T;
  };
}
