// The playground in headless Chromium (Debian's package, driven by playwright-core; no
// browser download), served from js/ by a static server on 127.0.0.1 started here.
import assert from "node:assert/strict";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { repoDir } from "./cases.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SCREENSHOT = join(repoDir, "target/playground.png");
const root = join(repoDir, "js");
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
};

// A seed-like record: the C2 on port 80, from a binary dropped in /tmp.
const HIT_RECORD = JSON.stringify({
  TimeGenerated: "2026-06-20T10:01:02Z",
  DeviceVendor: "Fortinet",
  DeviceProduct: "Fortigate",
  SourceIP: "10.20.0.15",
  SourcePort: 41822,
  DestinationIP: "194.48.251.24",
  DestinationPort: 80,
  Protocol: "TCP",
});
// The system's netstat run by an administrator: the built-in admin-netstat exclusion.
const NETSTAT_RECORD = JSON.stringify({
  DeviceName: "ops-bastion",
  RemoteIP: "194.48.251.24",
  RemotePort: 80,
  LocalIP: "10.40.0.5",
  InitiatingProcessFileName: "netstat",
  InitiatingProcessFolderPath: "/usr/bin/netstat",
  InitiatingProcessParentFileName: "bash",
  InitiatingProcessAccountName: "root",
});

// A one-indicator ThreatFox JSON export to paste.
const PASTED_FEED = JSON.stringify({
  42: [{ ioc_value: "45.95.147.23:8443", ioc_type: "ip:port", threat_type: "botnet_cc",
         malware: "elf.testbot", malware_printable: "TestBot", confidence_level: 60 }],
}, null, 2);

let server;
let context;
let userDataDir;
let base;
const outside = [];
const problems = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  assert.ok(existsSync(join(root, "pkg/index.js")), "js/pkg is missing: run ./dev js");
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    let file = join(root, path);
    if (!file.startsWith(root)) return res.writeHead(403).end();
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;

  userDataDir = mkdtempSync(join(tmpdir(), "iocsieve-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  // Only our own server may be reached; anything else is recorded and refused.
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${base}/`)) return route.continue();
    outside.push(url);
    return route.abort();
  });
});

after(async () => {
  await context?.close();
  server?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

async function verdicts(page) {
  return page.$$eval("#results > li", (items) => items.map((li) => li.dataset.verdict));
}

test("the playground shows hits, follows exclusions, and reports bad settings", async () => {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  await page.goto(`${base}/playground/`);
  await page.waitForSelector("body[data-ready=true]");

  // The built-in feed is preselected and loaded.
  assert.equal(await page.inputValue("#feed-choice"), "builtin");
  assert.match(await page.textContent("#load-status"), /^2 indicators loaded/);

  // A pasted record that matches shows as a hit with the indicator.
  await page.fill("#logs", `${HIT_RECORD}\n${NETSTAT_RECORD}\n{"DestinationIP":"10.0.0.1"}\n`);
  await page.waitForFunction(() => document.querySelectorAll("#results > li").length === 3);
  assert.deepEqual(await verdicts(page), ["hit", "suppressed", "miss"]);
  const first = await page.textContent("#results > li:nth-child(1)");
  assert.match(first, /194\.48\.251\.24:80/);
  assert.match(first, /DestinationIP/);
  assert.match(first, /Mirai/);
  assert.equal(
    await page.getAttribute("#results > li:nth-child(2) [data-exclusion]", "data-exclusion"),
    "admin-netstat",
  );
  assert.equal(await page.textContent('[data-counter="hits"] td'), "1");

  // An exclusion of our own suppresses the first hit.
  const settings = await page.inputValue("#settings");
  await page.fill(
    "#settings",
    settings.replace('field = "DeviceName", equals = "lab-scan-01"', 'field = "SourceIP", in_cidr = ["10.20.0.0/16"]'),
  );
  await page.waitForFunction(
    () => document.querySelector("#results > li")?.dataset.verdict === "suppressed",
  );
  assert.deepEqual(await verdicts(page), ["suppressed", "suppressed", "miss"]);
  assert.equal(
    await page.getAttribute("#results > li:nth-child(1) [data-exclusion]", "data-exclusion"),
    "lab-scanner",
  );

  // Without the built-in exclusions, the administrator's netstat is a hit again.
  await page.fill(
    "#settings",
    (await page.inputValue("#settings")).replace("default_exclusions = true", "default_exclusions = false"),
  );
  await page.waitForFunction(
    () => document.querySelector("#results > li:nth-child(2)")?.dataset.verdict === "hit",
  );
  assert.deepEqual(await verdicts(page), ["suppressed", "hit", "miss"]);

  // Bad settings: the error names the settings and the line; the verdicts stay.
  const good = await page.inputValue("#settings");
  await page.fill("#settings", `${good}\nloudness = 11\n`);
  await page.waitForSelector("#load-error:not([hidden])");
  assert.match(await page.textContent("#load-error"), /^settings, line \d+: .*loudness/);
  await page.fill("#settings", good);
  await page.waitForSelector("#load-error", { state: "hidden" });

  // A pasted feed replaces the built-in one; a broken one is named in the error.
  assert.equal(await page.isVisible("#feed-text"), false);
  await page.selectOption("#feed-choice", "paste");
  await page.fill("#feed-text", PASTED_FEED);
  await page.waitForFunction(() => /^1 indicators loaded from pasted feed/.test(
    document.querySelector("#load-status").textContent));
  await page.fill("#logs", `${HIT_RECORD}\n{"DestinationIP":"45.95.147.23","DestinationPort":8443}\n`);
  await page.waitForFunction(
    () => document.querySelector("#results > li:nth-child(2)")?.dataset.verdict === "hit",
  );
  assert.deepEqual(await verdicts(page), ["miss", "hit"]);
  assert.match(await page.textContent("#results > li:nth-child(2)"), /45\.95\.147\.23:8443.*TestBot/);
  await page.fill("#feed-text", PASTED_FEED.slice(0, 40));
  await page.waitForSelector("#load-error:not([hidden])");
  assert.match(await page.textContent("#load-error"), /^pasted feed/);
  // A picked file works the same way.
  await page.selectOption("#feed-choice", "file");
  await page.setInputFiles("#feed-file", {
    name: "picked.json",
    mimeType: "application/json",
    buffer: Buffer.from(PASTED_FEED),
  });
  await page.waitForFunction(() => /from picked\.json/.test(
    document.querySelector("#load-status").textContent));
  assert.deepEqual(await verdicts(page), ["miss", "hit"]);
  await page.selectOption("#feed-choice", "builtin");

  // The example records, with the enriched output shown, for the screenshot.
  await page.fill("#settings", settings);
  await page.click("#use-examples");
  await page.check("#show-output");
  await page.waitForFunction(() => document.querySelectorAll("#results > li").length === 10);
  const examples = await verdicts(page);
  assert.ok(examples.includes("hit") && examples.includes("suppressed") && examples.includes("miss"));
  await page.uncheck("#show-output");
  await page.waitForFunction(() => !document.querySelector("pre.output"));

  mkdirSync(join(repoDir, "target"), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.ok(statSync(SCREENSHOT).size > 10_000);

  assert.deepEqual(outside, [], "the page made requests beyond its own server");
  assert.deepEqual(problems, []);
});
