// Types of gen-api.mjs, for src/api/schema.test.ts.
export const OPENAPI_JSON: string;
export const SCHEMA_DTS: string;
export function generateSchemaTypes(openapiPath?: string): Promise<string>;
