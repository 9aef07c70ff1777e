// @vitest-environment node
// schema.d.ts is generated from openapi.json and committed; this keeps the two in step, so a
// schema change that breaks the app shows up in `npm run lint` rather than at run time.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateSchemaTypes, SCHEMA_DTS } from '../../scripts/gen-api.mjs';

/** Where two texts first differ, as "line N: expected … got …", for a short failure message. */
function firstDifference(want: string, got: string): string {
  const a = want.split('\n');
  const b = got.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1}: generated ${JSON.stringify(a[i] ?? '<end of file>')}, committed ${JSON.stringify(b[i] ?? '<end of file>')}`;
  }
  return 'identical lines, different bytes';
}

describe('src/api/schema.d.ts', () => {
  it('is what openapi-typescript generates from src/api/openapi.json', async () => {
    const generated = await generateSchemaTypes();
    const committed = fs.readFileSync(SCHEMA_DTS, 'utf8');
    if (generated !== committed) {
      expect.fail(`src/api/schema.d.ts is out of date with src/api/openapi.json (${firstDifference(generated, committed)}): run \`npm run gen:api\` and commit the result`);
    }
  }, 30_000);
});
