// src/api/schema.d.ts from src/api/openapi.json (the server's schema) with openapi-typescript.
// `npm run gen:api` writes it; src/api/schema.test.ts generates it again and fails when the
// committed file differs, so both go through `generateSchemaTypes` and agree byte for byte.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';

const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const OPENAPI_JSON = path.join(FRONTEND, 'src', 'api', 'openapi.json');
export const SCHEMA_DTS = path.join(FRONTEND, 'src', 'api', 'schema.d.ts');

const HEADER = `/**
 * Generated from src/api/openapi.json by \`npm run gen:api\` (openapi-typescript): do not edit.
 * src/api/types.ts names these types for the app.
 */

`;

/** The text of schema.d.ts for the schema at `openapiPath`. */
export async function generateSchemaTypes(openapiPath = OPENAPI_JSON) {
  const schema = JSON.parse(fs.readFileSync(openapiPath, 'utf8'));
  // silent: the script's output is the file; warnings (if any) would only interleave with vitest's.
  // emptyObjectsUnknown: a schema object without properties (SessionConfig, a saved session's
  // free-form config.json) is any JSON object, Record<string, unknown>; by default
  // openapi-typescript makes it Record<string, never>, an object that can have no field at all.
  const ast = await openapiTS(schema, { silent: true, emptyObjectsUnknown: true });
  return HEADER + astToString(ast);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = await generateSchemaTypes();
  fs.writeFileSync(SCHEMA_DTS, text);
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_DTS)} (${text.length} bytes) from ${path.relative(process.cwd(), OPENAPI_JSON)}`);
}
