// The KQL that `iocsieve rule` writes, checked by Microsoft's Kusto parser against the
// Sentinel schemas: no diagnostic of any severity. Runs the release build of iocsieve
// (target/release/iocsieve, or $IOCSIEVE_BIN), so build it first; ./dev test does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkQueries } from './kql.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const SHARED = process.env.IOCSIEVE_SHARED ?? join(here, '..', '..', '..', 'shared');
const SCHEMAS = join(SHARED, 'realdata', 'sentinel-schemas');
const THREATFOX = join(SHARED, 'realdata', 'feeds', 'threatfox', 'threatfox_export_recent.json');
const IOCSIEVE = process.env.IOCSIEVE_BIN ?? join(here, '..', '..', 'target', 'release', 'iocsieve');
const HEADER = '// iocsieve hunting query:';

/** Runs `iocsieve rule --format kql ARGS` and splits its output into queries. */
function ruleQueries(args) {
  assert.ok(existsSync(IOCSIEVE), `${IOCSIEVE} is missing: build it (cargo build --release -p iocsieve-host)`);
  const r = spawnSync(IOCSIEVE, ['rule', '--format', 'kql', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr);
  const queries = r.stdout.split(new RegExp(`^(?=${HEADER})`, 'm')).filter((q) => q.trim());
  assert.ok(queries.every((q) => q.startsWith(HEADER)), 'every query starts with its header');
  return queries;
}

function assertNoDiagnostics(queries) {
  const results = checkQueries(queries, SCHEMAS);
  results.forEach((r, i) => {
    const found = r.diagnostics.map((d) => `${d.severity} ${d.code} ${d.message} @${d.line}:${d.column}`);
    assert.deepEqual(found, [], `query ${i + 1}:\n${queries[i].slice(0, 2000)}`);
  });
}

const tablesOf = (queries) => queries.map((q) => q.split('\n')[0].split(' in ').at(-1));

test('rule KQL for the built-in Mirai feed has no diagnostics', () => {
  const queries = ruleQueries([]);
  assert.deepEqual(tablesOf(queries), ['CommonSecurityLog', 'DeviceNetworkEvents', 'DeviceFileEvents']);
  assertNoDiagnostics(queries);
});

test('rule KQL for the Mirai entries of the ThreatFox export has no diagnostics', () => {
  const queries = ruleQueries(['--feed', THREATFOX, '--malware', 'Mirai']);
  assert.equal(queries.length, 3);
  assert.ok(queries[1].includes('"'), 'the lists hold values');
  assertNoDiagnostics(queries);
});

test('rule KQL for the whole ThreatFox export, split into parts, has no diagnostics', () => {
  const queries = ruleQueries(['--feed', THREATFOX, '--max-list', '300']);
  assert.ok(queries.length > 3, `the lists are split: ${queries.length} queries`);
  assert.ok(queries.some((q) => q.split('\n')[0].includes('(part 2 of ')));
  assertNoDiagnostics(queries);
});

test('rule KQL with address-only matching and every exclusion operator has no diagnostics', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iocsieve-rule-'));
  const settings = join(dir, 'settings.toml');
  writeFileSync(settings, `
match_address_only = true

[[exclusions]]
name = "scanner"
reason = "our vulnerability scanner connects to everything"
when.all = [
  { field = "LocalIP", in_cidr = ["10.9.0.0/24", "2001:db8::/32"] },
  { not = { field = "InitiatingProcessAccountName", equals = "root" } },
  { any = [ { field = "InitiatingProcessCommandLine", has_any = ["nmap", "masscan"] },
            { field = "InitiatingProcessFolderPath", startswith = "/opt/scanner/" },
            { field = "InitiatingProcessFileName", endswith = ".py" },
            { field = "RemotePort", in = ["22", "443"] },
            { field = "DeviceVendor", has = "Palo \\"Alto\\"" } ] },
]
`);
  const queries = ruleQueries(['--feed', THREATFOX, '--settings', settings]);
  assert.ok(queries.every((q) => q.includes('// Exclusion scanner:')));
  assert.ok(queries.some((q) => q.includes('ipv6_is_in_range(')));
  assert.ok(!queries.some((q) => q.includes('IocEndpoints')), 'address-only: no endpoint lists');
  assertNoDiagnostics(queries);
});

test('rule KQL for networks, domains and URLs has no diagnostics', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iocsieve-rule-'));
  const feed = join(dir, 'threatfox.json');
  writeFileSync(feed, JSON.stringify({
    1: [{ ioc_value: 'evil-mirai-cc.xyz', ioc_type: 'domain', threat_type: 'botnet_cc',
      malware: 'elf.mirai', malware_printable: 'Mirai', confidence_level: 75 }],
    2: [{ ioc_value: 'http://evil-mirai-cc.xyz:8080/bins/Mips?x=1', ioc_type: 'url',
      threat_type: 'payload_delivery', malware: 'elf.mirai', malware_printable: 'Mirai' }],
    3: [{ ioc_value: '45.9.148.12:80', ioc_type: 'ip:port', threat_type: 'botnet_cc',
      malware: 'elf.mirai', malware_printable: 'Mirai' }],
  }));
  const nets = join(dir, 'nets.txt');
  writeFileSync(nets, '45.9.148.0/24\n2a0e:1c80:1::/48\n');
  const settings = join(dir, 'settings.toml');
  writeFileSync(settings, `
[[feeds]]
name = "nets.txt"
format = "list:cidr"

[[feeds]]
name = "threatfox.json"
domain_match = "subdomains"
`);
  const queries = ruleQueries(['--feed', feed, '--feed', nets, '--settings', settings]);
  assert.deepEqual(tablesOf(queries), ['CommonSecurityLog', 'DeviceNetworkEvents']);
  for (const q of queries) {
    for (const name of ['IocNetworksV4', 'IocNetworksV6', 'IocDomains', 'IocUrls', 'IocEndpoints']) {
      assert.ok(q.includes(`let ${name} = dynamic([`), `${name} in\n${q}`);
    }
    assert.ok(q.includes('IocUrl('), 'URL columns are compared');
  }
  assertNoDiagnostics(queries);
});

test('rule KQL for the domains and URLs of the ThreatFox export, split, has no diagnostics', () => {
  const queries = ruleQueries(['--feed', THREATFOX, '--max-list', '200']);
  assert.ok(queries.some((q) => q.includes('let IocDomains = dynamic([')));
  assert.ok(queries.some((q) => q.includes('let IocUrls = dynamic([')));
  assertNoDiagnostics(queries);
});
