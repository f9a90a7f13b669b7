import * as fs from 'node:fs';
import { generatedPath, renderTypes } from './generate-types';

describe('client/src/openapi-types.ts', () => {
  it('is what openapi-typescript makes of the runtime OpenAPI document now', () => {
    const current = fs.readFileSync(generatedPath(), 'utf8');
    if (current !== renderTypes()) {
      throw new Error(`${generatedPath()} is stale: the OpenAPI document changed; run npm run gen:client`);
    }
  });

  it('notices a change of the document', () => {
    const changed = renderTypes({
      openapi: '3.1.0',
      info: { title: 't', version: '1' },
      paths: {},
      components: { schemas: { Planted: { type: 'string' } } },
    });
    expect(changed).toContain('Planted: string');
    expect(changed).not.toBe(fs.readFileSync(generatedPath(), 'utf8'));
  });
});
