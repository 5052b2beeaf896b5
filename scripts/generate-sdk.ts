// Regenerates the typed client from the OpenAPI document the app serves: src/sdk/openapi.json and src/sdk/schema.ts.
// `npm run sdk:generate` after changing any route; tests/sdk/sdk-sync.test.ts fails when they are out of date.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderSdk } from './sdk-render.js';
import { projectRoot } from '../src/shared/paths.js';

const { spec, schemaTs } = await renderSdk();
await writeFile(path.join(projectRoot, 'src/sdk/openapi.json'), spec);
await writeFile(path.join(projectRoot, 'src/sdk/schema.ts'), schemaTs);
console.log('wrote src/sdk/openapi.json and src/sdk/schema.ts');
