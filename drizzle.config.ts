import { defineConfig } from 'drizzle-kit';

// SQL migrations are generated into drizzle/ (`npm run db:generate`), committed, and applied by the service at
// start or by `npm run db:migrate`. They must stay valid on PostgreSQL 15 (the server) and PGlite (PostgreSQL 18).
export default defineConfig({
  out: './drizzle',
  schema: './src/db/schema/index.ts',
  dialect: 'postgresql',
  casing: undefined,
});
