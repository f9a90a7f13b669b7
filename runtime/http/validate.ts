import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { toFieldErrors } from '../../api/validate';
import { RequestError } from './errors';
import { openApiDocument, type SchemaName } from './openapi';

const ajv = new Ajv2020({ allErrors: false, strict: true, strictTypes: false });
addFormats(ajv);
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
