// Self-tests for kql-check. Run: node --test tools/kql-check/
// Reads Microsoft's Sentinel table schemas from ../shared/realdata/sentinel-schemas
// (or $IOCSIEVE_SHARED/realdata/sentinel-schemas).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkQueries, loadSchemas, kustoType } from './kql.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const SCHEMAS = process.env.IOCSIEVE_SHARED
  ? join(process.env.IOCSIEVE_SHARED, 'realdata', 'sentinel-schemas')
  : join(here, '..', '..', '..', 'shared', 'realdata', 'sentinel-schemas');
const CHECK = join(here, 'check.mjs');

const check = (q) => checkQueries([q], SCHEMAS)[0];
const errorsOf = (q) => check(q).diagnostics.filter((d) => d.severity === 'Error');
const fmt = (ds) => ds.map((d) => `${d.code} ${d.message} @${d.line}:${d.column}`).join('\n');

function assertClean(q) {
  const errs = errorsOf(q);
  assert.equal(errs.length, 0, `expected no errors for:\n${q}\ngot:\n${fmt(errs)}`);
}

const VALID =
  'let iocs = dynamic(["1.2.3.4"]); DeviceNetworkEvents | where RemoteIP in (iocs) and RemotePort == 80 ' +
  '| project Timestamp, DeviceName, RemoteIP | order by Timestamp desc';

test('shared schemas load with the expected columns', () => {
  const byName = Object.fromEntries(loadSchemas(SCHEMAS).map((t) => [t.name, t]));
  assert.deepEqual(Object.keys(byName).sort(), ['CommonSecurityLog', 'DeviceFileEvents', 'DeviceNetworkEvents']);
  const cols = byName.DeviceNetworkEvents.columns.map((c) => c.name);
  for (const c of ['RemoteIP', 'RemotePort', 'RemoteUrl', 'Timestamp', 'DeviceName']) assert.ok(cols.includes(c), c);
});

test('valid DeviceNetworkEvents IOC query has no diagnostics at all', () => {
  const r = check(VALID);
  assert.deepEqual(r.diagnostics, [], fmt(r.diagnostics));
  assert.equal(r.errors, 0);
});

test('syntax error is reported with code and position', () => {
  const q = 'DeviceNetworkEvents\n| wher RemotePort == 80';
  const errs = errorsOf(q);
  assert.ok(errs.length > 0, 'expected a syntax error');
  const e = errs.find((d) => d.code === 'KS176'); // "Query operator expected."
  assert.ok(e, fmt(errs));
  assert.equal(e.line, 2);
  assert.equal(e.column, 3);
  assert.equal(q.slice(e.start, e.start + e.length), 'wher');
});

test('unbalanced parenthesis is a syntax error', () => {
  assert.ok(errorsOf('DeviceNetworkEvents | where (RemotePort == 80').length > 0);
});

test('unknown column is an unknown-name error', () => {
  const errs = errorsOf('DeviceNetworkEvents | where NoSuchColumn == 1');
  assert.equal(errs.length, 1, fmt(errs));
  assert.equal(errs[0].code, 'KS142');
  assert.match(errs[0].message, /'NoSuchColumn' does not refer to any known/);
  assert.equal(errs[0].column, 29);
});

test('unknown table is an error', () => {
  const errs = errorsOf('NoSuchTable | take 10');
  assert.equal(errs.length, 1, fmt(errs));
  assert.equal(errs[0].code, 'KS204');
  assert.match(errs[0].message, /'NoSuchTable'/);
});

test('unknown function (a plausible typo) is an error', () => {
  const errs = errorsOf('DeviceNetworkEvents | where ipv4_in_range(RemoteIP, "10.0.0.0/8")');
  assert.equal(errs.length, 1, fmt(errs));
  assert.equal(errs[0].code, 'KS211');
  assert.match(errs[0].message, /'ipv4_in_range'/);
});

test('column types come from the schema (int column vs string ordering fails)', () => {
  // RemotePort is Int in the schema; `>` against a string is a type error.
  assert.ok(errorsOf('DeviceNetworkEvents | where RemotePort > "a"').length > 0);
  assertClean('DeviceNetworkEvents | where RemotePort > 1024');
});

test('empty query or let-only query fails', () => {
  for (const q of ['', '  // just a comment\n', 'let x = 1;']) {
    const errs = errorsOf(q);
    assert.deepEqual(errs.map((d) => d.code), ['KQLCHECK1'], JSON.stringify(q));
  }
});

test('unknown schema column type is rejected, known spellings map', () => {
  assert.throws(() => kustoType('Varchar'), /unknown schema column type/);
  for (const t of ['String', 'Datetime', 'DateTime', 'Long', 'BigInt', 'Int', 'Dynamic', 'Real', 'Float', 'Bool', 'Boolean', 'Guid', 'timespan']) {
    assert.ok(kustoType(t), t);
  }
});

// Constructs that Sentinel IOC hunting queries rely on; each must analyse cleanly.
const SENTINEL_IDIOMS = {
  ipv4_is_in_range: 'DeviceNetworkEvents | where ipv4_is_in_range(RemoteIP, "10.0.0.0/8")',
  ipv6_is_in_range: 'DeviceNetworkEvents | where ipv6_is_in_range(RemoteIP, "2001:db8::/32")',
  'parse_ipv6 / ipv4_is_match':
    'DeviceNetworkEvents | extend v6 = parse_ipv6(RemoteIP) | where ipv4_is_match(RemoteIP, "192.168.1.1/24") or isnotempty(v6)',
  has: 'CommonSecurityLog | where RequestURL has "evil.example"',
  'in~': 'DeviceNetworkEvents | where RemoteUrl in~ ("Evil.Example", "bad.example")',
  '=~': 'DeviceFileEvents | where SHA256 =~ "AB12" or FileName =~ "x.exe"',
  'startswith / endswith / tolower':
    'DeviceNetworkEvents | where tolower(RemoteUrl) endswith ".evil.example" or RemoteUrl startswith "http://bad"',
  'union + extend':
    'union (DeviceNetworkEvents | extend IP = RemoteIP), (CommonSecurityLog | extend IP = DestinationIP) ' +
    '| where IP in ("1.2.3.4") | extend Source = "iocsieve" | project TimeGenerated, IP, Source',
  'union isfuzzy of tables': 'union isfuzzy=true DeviceNetworkEvents, CommonSecurityLog | where TimeGenerated > ago(1d) | take 10',
  'let list + has_any + summarize':
    'let domains = dynamic(["evil.example"]);\nDeviceNetworkEvents\n| where RemoteUrl has_any (domains)\n' +
    '| summarize Count = count(), First = min(Timestamp) by DeviceName, RemoteUrl',
  'join against datatable':
    'let iocs = datatable(Ip: string, Tag: string) ["1.2.3.4", "c2"];\n' +
    'CommonSecurityLog | join kind=inner iocs on $left.DestinationIP == $right.Ip | project TimeGenerated, DestinationIP, Tag',
};

for (const [name, q] of Object.entries(SENTINEL_IDIOMS)) {
  test(`Sentinel idiom parses and analyses: ${name}`, () => assertClean(q));
}

test('checkQueries checks several texts independently', () => {
  const rs = checkQueries([VALID, 'DeviceNetworkEvents | where NoSuchColumn == 1'], SCHEMAS);
  assert.deepEqual(rs.map((r) => r.errors), [0, 1]);
});

// --- CLI ---
const run = (args, input) => spawnSync(process.execPath, [CHECK, ...args], { input, encoding: 'utf8' });

test('CLI: valid files exit 0 and print the summary line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kql-check-'));
  writeFileSync(join(dir, 'a.kql'), VALID);
  writeFileSync(join(dir, 'b.kql'), SENTINEL_IDIOMS['union + extend']);
  const r = run(['--schemas', SCHEMAS, join(dir, 'a.kql'), join(dir, 'b.kql')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.trim().split('\n').at(-1), 'kql-check: 2 queries, 0 errors');
});

test('CLI: stdin with an error exits 1 and prints severity, code, message, position', () => {
  const r = run(['--schemas', SCHEMAS], 'DeviceNetworkEvents\n| where NoSuchColumn == 1\n');
  assert.equal(r.status, 1, r.stdout + r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^<stdin>:2:9: Error KS142: The name 'NoSuchColumn' .* \[offset 28, length 12\]$/);
  assert.equal(lines.at(-1), 'kql-check: 1 queries, 1 errors');
});

test('CLI: schema dir is honoured (table missing from it is unknown)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kql-schemas-'));
  mkdirSync(join(dir, 's'));
  writeFileSync(join(dir, 's', 'T.json'), JSON.stringify({ Name: 'T', Properties: [{ Name: 'A', Type: 'String' }] }));
  assert.equal(run(['--schemas', join(dir, 's')], 'T | where A has "x"').status, 0);
  const r = run(['--schemas', join(dir, 's')], VALID);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /KS204: The name 'DeviceNetworkEvents'/);
});

test('CLI: bad usage exits 2', () => {
  assert.equal(run(['--schemas']).status, 2);
  assert.equal(run(['--schemas', SCHEMAS, '/nonexistent/q.kql']).status, 2);
});
