// Core of kql-check: parse and semantically analyse KQL with Microsoft's own
// Kusto parser (Kusto.Language, compiled to JS via Bridge.NET and shipped as
// @kusto/language-service-next), against Sentinel table schemas read from JSON.
import { createRequire } from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

let K; // Kusto.Language namespace, loaded on first use (~0.4 s)

function kusto() {
  if (!K) {
    // The package is not an ES/CommonJS module: bridge.js installs the
    // Bridge.NET runtime and Kusto.Language.Bridge.js the Kusto namespace,
    // both as globals (globalThis.Bridge, .System, .Kusto).
    require('@kusto/language-service-next/bridge.js');
    require('@kusto/language-service-next/Kusto.Language.Bridge.js');
    K = globalThis.Kusto.Language;
  }
  return K;
}

// Sentinel/Log Analytics schema type names (case varies between files) -> Kusto scalar types.
const TYPE_MAP = {
  string: 'String',
  datetime: 'DateTime', date: 'DateTime',
  long: 'Long', bigint: 'Long', int64: 'Long',
  int: 'Int', int32: 'Int',
  real: 'Real', float: 'Real', double: 'Real',
  decimal: 'Decimal',
  bool: 'Bool', boolean: 'Bool',
  dynamic: 'Dynamic', object: 'Dynamic',
  guid: 'Guid', uniqueid: 'Guid',
  timespan: 'TimeSpan', time: 'TimeSpan',
};

export function kustoType(typeName) {
  const t = TYPE_MAP[String(typeName).toLowerCase()];
  // Fail loudly rather than guess: a wrong type would hide real type errors.
  if (!t) throw new Error(`unknown schema column type '${typeName}'`);
  return kusto().Symbols.ScalarTypes[t];
}

/** Read every *.json table schema in dir: [{name, columns: [{name, type}]}]. */
export function loadSchemas(dir) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const j = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      // Sentinel's KqlvalidationsTests use {Name, Properties:[{Name, Type}]};
      // also accept the Log Analytics API's lower-case {name, columns}.
      const cols = j.Properties ?? j.Columns ?? j.properties ?? j.columns ?? [];
      return {
        name: j.Name ?? j.name,
        columns: cols.map((c) => ({ name: c.Name ?? c.name, type: c.Type ?? c.type })),
      };
    });
}

/** Build a GlobalState whose default database holds one TableSymbol per schema. */
export function buildGlobals(schemas) {
  const L = kusto();
  const S = L.Symbols;
  const tables = schemas.map((t) => {
    const cols = t.columns.map(
      // ColumnSymbol(name, type, description, originalColumns, source, examples)
      (c) => new S.ColumnSymbol(c.name, kustoType(c.type), null, null, null, null),
    );
    return new S.TableSymbol.$ctor4(t.name, cols); // TableSymbol(name, ColumnSymbol[])
  });
  const db = new S.DatabaseSymbol.ctor('sentinel', tables); // DatabaseSymbol(name, Symbol[])
  return L.GlobalState.Default.WithDatabase(db);
}

function lineCol(text, offset) {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') { line++; start = i + 1; }
  }
  return { line, column: offset - start + 1 };
}

/** Parse + analyse one query; returns plain diagnostic objects. */
export function checkQuery(text, globals) {
  const code = kusto().KustoCode.ParseAndAnalyze(text, globals);
  const list = code.GetDiagnostics(); // IReadOnlyList<Diagnostic>: .Count / .getItem(i)
  const out = [];
  for (let i = 0; i < list.Count; i++) {
    const d = list.getItem(i);
    out.push({
      severity: d.Severity, // "Error" | "Warning" | "Suggestion" | "Information"
      code: d.Code, // e.g. KS142 (unknown name), KS204 (unknown table)
      message: d.Message,
      start: d.Start,
      length: d.Length,
      ...lineCol(text, d.Start),
    });
  }
  // Kusto accepts an empty text or one holding only `let` statements, but a
  // hunting query must return rows; flag it so a blank generated file fails.
  if (!code.ResultType && !out.some((d) => d.severity === 'Error')) {
    out.push({
      severity: 'Error', code: 'KQLCHECK1',
      message: 'query has no result expression (empty text or only let statements)',
      start: text.length, length: 0, ...lineCol(text, text.length),
    });
  }
  return out;
}

const globalsCache = new Map();

/**
 * Check several query texts against the table schemas in schemaDir.
 * Returns [{text, diagnostics, errors}] where errors counts Error diagnostics.
 */
export function checkQueries(texts, schemaDir) {
  let globals = globalsCache.get(schemaDir);
  if (!globals) {
    globals = buildGlobals(loadSchemas(schemaDir));
    globalsCache.set(schemaDir, globals);
  }
  return texts.map((text) => {
    const diagnostics = checkQuery(text, globals);
    return { text, diagnostics, errors: diagnostics.filter((d) => d.severity === 'Error').length };
  });
}
