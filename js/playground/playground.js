// The playground: builds a detector from the chosen feed and the settings, evaluates the
// pasted records and shows each verdict with what matched and which exclusion applied.
import { Detector, builtinSettings } from "../pkg/index.js";
import { EXAMPLE_RECORDS } from "./examples.js";

const DEFAULT_SETTINGS = `mode = "tag"                 # or "hits-only": drop misses
default_exclusions = true    # the built-in exclusions (below)
match_address_only = false   # ip:port indicators on any port

# Your own exclusions: a hit on a matching record
# is suppressed (counted, tagged, not alerted).
[[exclusions]]
name = "lab-scanner"
reason = "the lab's vulnerability scanner connects to everything"
when.all = [
  { field = "DeviceName", equals = "lab-scan-01" },
]
`;

const $ = (id) => document.getElementById(id);
const ui = {
  feedChoice: $("feed-choice"),
  feedFormat: $("feed-format"),
  feedFile: $("feed-file"),
  feedText: $("feed-text"),
  loadStatus: $("load-status"),
  settings: $("settings"),
  loadError: $("load-error"),
  logs: $("logs"),
  results: $("results"),
  noResults: $("no-results"),
  counters: $("counters"),
  showOutput: $("show-output"),
};

// The picked file's bytes, kept so that editing the settings does not re-read it.
let fileFeed = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

function feeds() {
  const format = ui.feedFormat.value;
  switch (ui.feedChoice.value) {
    case "paste":
      return [{ name: "pasted feed", format, content: ui.feedText.value }];
    case "file":
      return fileFeed ? [{ ...fileFeed, format }] : null;
    default:
      return []; // the built-in feed
  }
}

function describeLoad(stats) {
  const kinds = {};
  const skipped = {};
  for (const feed of stats.feeds) {
    for (const [k, n] of Object.entries(feed.loaded)) kinds[k] = (kinds[k] ?? 0) + n;
    for (const [k, n] of Object.entries(feed.skipped)) skipped[k] = (skipped[k] ?? 0) + n;
  }
  const list = (o) => Object.entries(o).map(([k, n]) => `${k} ${n}`).join(", ");
  let text = `${stats.indicators} indicators loaded from ${stats.feeds.map((f) => `${f.name} (${f.format})`).join(", ")}`;
  if (Object.keys(kinds).length) text += `: ${list(kinds)}`;
  if (Object.keys(skipped).length) text += `; skipped ${list(skipped)}`;
  text += `. ${stats.exclusions.length} exclusions, ${stats.profiles.length} profiles.`;
  return text;
}

function matchLine(m) {
  const bits = [
    el("code", { class: "indicator" }, m.indicator),
    el("span", { class: "kind" }, m.kind),
    " in ",
    el("code", {}, m.field),
    ` (${m.role})`,
  ];
  if (m.observed && m.observed !== m.indicator) bits.push(" as ", el("code", {}, m.observed));
  const about = [m.malwarePrintable || m.malware, m.threatType].filter(Boolean).join(", ");
  if (about) bits.push(` — ${about}`);
  if (m.confidence !== null) bits.push(`, confidence ${m.confidence}`);
  if (m.addressOnly) bits.push(el("span", { class: "kind warn" }, "address only"));
  bits.push(el("span", { class: "feed" }, m.feed));
  return el("li", { class: "match" }, bits);
}

function resultItem(line, record, outcome) {
  const { verdict, emit } = outcome;
  const label = { miss: "miss", hit: "hit", suppressed: "suppressed", unreadable: "unreadable" }[verdict.type];
  const head = el(
    "div",
    { class: "head" },
    el("span", { class: "line" }, `line ${line}`),
    el("span", { class: `badge ${verdict.type}` }, label),
    el("code", { class: "record" }, record.length > 140 ? `${record.slice(0, 140)}…` : record),
  );
  const body = [];
  if (verdict.type === "suppressed") {
    body.push(
      el(
        "p",
        { class: "exclusion" },
        "Exclusion ",
        el("strong", { "data-exclusion": verdict.exclusion }, verdict.exclusion),
        `: ${verdict.reason}`,
      ),
    );
  }
  if (verdict.type === "hit" || verdict.type === "suppressed") {
    body.push(el("ul", { class: "matches" }, verdict.matches.map(matchLine)));
  }
  if (verdict.type === "unreadable") body.push(el("p", { class: "why" }, verdict.error));
  if (ui.showOutput.checked) {
    const sent = emit.type === "enriched" ? emit.record : emit.type === "dropped" ? "(dropped)" : record;
    body.push(el("pre", { class: "output" }, sent));
  }
  return el("li", { class: `result ${verdict.type}`, "data-verdict": verdict.type }, head, body);
}

function showCounters(c) {
  const rows = [
    ["records in", c.recordsIn],
    ["records out", c.recordsOut],
    ["hits", c.hits],
    ["suppressed", c.suppressed],
    ["unreadable", c.unreadable],
    ["without a profile", c.withoutProfile],
    ["dropped misses", c.droppedMisses],
    ["address-only hits", c.addressOnlyHits],
  ];
  const named = (o) => Object.entries(o).map(([k, n]) => `${k} ${n}`).join(", ") || "–";
  rows.push(["hits by kind", named(c.hitsByKind)]);
  rows.push(["suppressions", named(c.suppressionsByExclusion)]);
  rows.push(["records by profile", named(c.recordsByProfile)]);
  ui.counters.replaceChildren(
    ...rows.map(([k, v]) => el("tr", { "data-counter": k }, el("th", {}, k), el("td", {}, String(v)))),
  );
}

function run() {
  const chosen = feeds();
  if (chosen === null) {
    ui.loadStatus.textContent = "Pick a feed file.";
    return;
  }
  let detector;
  try {
    detector = new Detector({ feeds: chosen, settings: ui.settings.value });
  } catch (error) {
    ui.loadError.textContent = error.message;
    ui.loadError.hidden = false;
    ui.settings.classList.toggle("invalid", error.input === "settings");
    ui.loadStatus.textContent = "Not loaded: fix the input named below.";
    ui.loadStatus.classList.add("bad");
    return;
  }
  ui.loadError.hidden = true;
  ui.settings.classList.remove("invalid");
  ui.loadStatus.classList.remove("bad");
  ui.loadStatus.textContent = describeLoad(detector.loadStats);

  const records = ui.logs.value.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const outcomes = detector.evaluateBatch(records.join("\n"));
  ui.results.replaceChildren(...outcomes.map((o, i) => resultItem(i + 1, records[i], o)));
  ui.noResults.hidden = records.length > 0;
  showCounters(detector.counters());
  detector.free();
}

let pending = 0;
function schedule() {
  clearTimeout(pending);
  pending = setTimeout(run, 120);
}

ui.feedChoice.addEventListener("change", () => {
  ui.feedText.hidden = ui.feedChoice.value !== "paste";
  if (ui.feedChoice.value === "file") ui.feedFile.click();
  schedule();
});
ui.feedFile.addEventListener("change", async () => {
  const file = ui.feedFile.files[0];
  if (file) fileFeed = { name: file.name, content: new Uint8Array(await file.arrayBuffer()) };
  schedule();
});
for (const input of [ui.feedText, ui.settings, ui.logs]) input.addEventListener("input", schedule);
for (const input of [ui.feedFormat, ui.showOutput]) input.addEventListener("change", schedule);
$("use-examples").addEventListener("click", () => {
  ui.logs.value = `${EXAMPLE_RECORDS.join("\n")}\n`;
  schedule();
});
$("clear-logs").addEventListener("click", () => {
  ui.logs.value = "";
  schedule();
});

ui.settings.value = DEFAULT_SETTINGS;
$("builtin-settings").textContent = builtinSettings();
run();
document.body.dataset.ready = "true";
