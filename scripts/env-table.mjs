#!/usr/bin/env node
// Prints the README's configuration table from .env.example (the one place variables are documented):
//   node scripts/env-table.mjs   → paste between the <!-- env-table --> markers (tests/app/readme.test.ts checks it).
import { readFileSync } from 'node:fs';

export function envTable(text) {
  const rows = [];
  let comment = [];
  let lastWasVar = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      if (lastWasVar) comment = [];
      comment.push(line.slice(1).trim());
      lastWasVar = false;
    } else if (/^[A-Z0-9_]+=/.test(line)) {
      const i = line.indexOf('=');
      const name = line.slice(0, i);
      const value = line.slice(i + 1);
      rows.push(`| \`${name}\` | ${value === '' ? '(unset)' : `\`${value}\``} | ${comment.join(' ').replace(/\|/g, '\\|')} |`);
      lastWasVar = true;
    } else {
      comment = [];
      lastWasVar = false;
    }
  }
  return ['| variable | example / default | meaning |', '|---|---|---|', ...rows].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${envTable(readFileSync(new URL('../.env.example', import.meta.url), 'utf8'))}\n`);
}
