#!/usr/bin/env node
// Usage: node tools/kql-check/check.mjs [--schemas DIR] [FILE.kql ...]
// Each file is one query text (it may start with `let` statements); with no
// file the query is read from stdin. DIR defaults to ../shared/realdata/sentinel-schemas.
// Exit 0: no Error diagnostics; 1: some query has errors; 2: usage/IO problem.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkQueries } from './kql.mjs';

const USAGE = 'usage: check.mjs [--schemas DIR] [FILE.kql ...]';

function main(argv) {
  // Microsoft's Sentinel table schemas, from the shared material beside the repository.
  let schemaDir = process.env.IOCSIEVE_SHARED
    ? `${process.env.IOCSIEVE_SHARED}/realdata/sentinel-schemas`
    : fileURLToPath(new URL('../../../shared/realdata/sentinel-schemas/', import.meta.url));
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--schemas') {
      if (i + 1 >= argv.length) throw new UsageError('--schemas needs a directory');
      schemaDir = argv[++i];
    } else if (a.startsWith('--schemas=')) schemaDir = a.slice('--schemas='.length);
    else if (a === '-h' || a === '--help') { console.log(USAGE); return 0; }
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
    else files.push(a);
  }
  const names = files.length ? files : ['<stdin>'];
  const texts = names.map((f) => readFileSync(f === '<stdin>' || f === '-' ? 0 : f, 'utf8'));

  const results = checkQueries(texts, schemaDir);
  let errors = 0;
  results.forEach((r, i) => {
    errors += r.errors;
    for (const d of r.diagnostics) {
      // file:line:col like a compiler, then severity, code, message and offset/length.
      console.log(`${names[i]}:${d.line}:${d.column}: ${d.severity} ${d.code}: ${d.message} [offset ${d.start}, length ${d.length}]`);
    }
  });
  console.log(`kql-check: ${results.length} queries, ${errors} errors`);
  return errors > 0 ? 1 : 0;
}

class UsageError extends Error {}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof UsageError ? `${e.message}\n${USAGE}` : `kql-check: ${e.message}`);
  process.exitCode = 2;
}
