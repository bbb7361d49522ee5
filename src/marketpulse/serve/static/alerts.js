// Alerts of one dataset (the selector in the navigation bar), newest first, a page at a time,
// filtered by symbol, rule and severity on the server: the count is the lake's (a count query),
// not the rows this page holds. On the first page, alerts pushed live that match are added.
"use strict";
MP.nav();
const PAGE = 100;
const body = document.querySelector("#alerts tbody");
const symbolBox = document.getElementById("symbol");
const ruleBox = document.getElementById("rule");
const severityBox = document.getElementById("severity");
const countBox = document.getElementById("count");
let alerts = [];  // the page shown, newest first
let dataset = null, offset = 0, total = 0, newestMs = -Infinity, asked = "";
let counted = new Set();  // ids of the newest page's alerts and of those counted live since

function filters() {
  const query = { dataset };
  const symbol = symbolBox.value.trim().toUpperCase();
  if (symbol) query.symbol = symbol;
  if (ruleBox.value) query.rule = ruleBox.value;
  if (severityBox.value) query.severity = severityBox.value;
  return query;
}

const matches = (a, f) => (!f.symbol || a.symbol === f.symbol) && (!f.rule || a.rule === f.rule)
  && (!f.severity || a.severity === f.severity);

// Alerts pushed live: new ones (after the newest the page was loaded with) that match the
// filters are counted, and shown when the first page is.
function add(list, fallback) {
  if (!dataset || asked) return;
  const f = filters();
  const fresh = list.filter((a) => (a.dataset ?? fallback) === dataset && !counted.has(a.id)
    && MP.ms(a.bar_end) >= newestMs && matches(a, f));
  if (!fresh.length) return;
  for (const a of fresh) counted.add(a.id);
  total += fresh.length;
  if (!ruleBox.querySelector("option[value='" + CSS.escape(fresh[0].rule) + "']")) {
    ruleBox.add(new Option(fresh[0].rule, fresh[0].rule));
  }
  if (offset === 0) {
    alerts = [...fresh, ...alerts].sort((a, b) => MP.ms(b.bar_end) - MP.ms(a.bar_end)).slice(0, PAGE);
  }
  render();
}

function render() {
  const fragment = document.createDocumentFragment();
  for (const a of alerts) {
    const tr = document.createElement("tr");
    tr.dataset.id = a.id;
    tr.dataset.rule = a.rule;
    tr.dataset.ts = MP.ms(a.bar_end);
    for (const [text, cls] of [[MP.time(a.bar_end), ""], [a.symbol, ""], [a.timeframe, ""], [a.rule, "rule"],
                               [a.severity, "sev-" + a.severity], [a.message, "message"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    fragment.appendChild(tr);
  }
  body.replaceChildren(fragment);
  const first = alerts.length ? offset + 1 : 0;
  const filtered = Object.keys(filters()).length > 1;
  countBox.textContent = total === 0 ? (filtered ? "no alerts match" : "no alerts in this dataset")
    : MP.fmt(first, 0) + "–" + MP.fmt(offset + alerts.length, 0) + " of " + MP.fmt(total, 0) + " alerts";
  countBox.dataset.total = total;
  countBox.dataset.offset = offset;
  document.getElementById("newer").disabled = offset === 0;
  document.getElementById("older").disabled = offset + alerts.length >= total;
}

// Lists the rules with their counts under the other filters; keeps the one picked.
function setRules(byRule) {
  const picked = ruleBox.value;
  const options = [new Option("every rule", "")];
  for (const r of byRule) options.push(new Option(r.rule + " (" + MP.fmt(r.count, 0) + ")", r.rule));
  if (picked && !byRule.some((r) => r.rule === picked)) options.push(new Option(picked + " (0)", picked));
  ruleBox.replaceChildren(...options);
  ruleBox.value = picked;
}

// Reads the page at ``offset`` and the count for the filters shown.
async function load() {
  if (!dataset) { alerts = []; total = 0; render(); return; }
  const f = filters();
  const key = JSON.stringify([f, offset]);
  asked = key;
  const query = new URLSearchParams(f);
  const [page, counts] = await Promise.all([
    MP.getJSON("/api/alerts?" + query + "&limit=" + PAGE + "&offset=" + offset),
    MP.getJSON("/api/alerts/count?" + query),
  ]);
  if (asked !== key) return;  // the filters changed meanwhile: that answer is on its way
  asked = "";
  alerts = page;
  total = counts.count;
  if (offset === 0) {
    newestMs = page.length ? MP.ms(page[0].bar_end) : -Infinity;
    counted = new Set(page.map((a) => a.id));
  }
  setRules(counts.by_rule);
  render();
  body.dataset.loaded = key;
}

const reload = () => load().catch((e) => { asked = ""; countBox.textContent = String(e); });
for (const box of [ruleBox, severityBox]) box.addEventListener("input", () => { offset = 0; reload(); });
let typing = 0;
symbolBox.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => { offset = 0; reload(); }, 250);
});
document.getElementById("older").addEventListener("click", () => { offset += PAGE; reload(); });
document.getElementById("newer").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); reload(); });

async function pickDataset(name) {
  dataset = name;
  offset = 0;
  alerts = [];
  const list = name ? await MP.getJSON("/api/symbols?dataset=" + encodeURIComponent(name)) : [];
  document.getElementById("symbols").replaceChildren(...list.map((s) => new Option(s.symbol)));
  await load();
}

// Track record: the distribution of each rule's forward returns against the baseline's,
// boxes drawn from the server's percentiles (whiskers: 5th and 95th).
const track = document.getElementById("track");
const horizonBox = document.getElementById("horizon");
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");

function boxes(rules, key, name, color) {
  const shown = rules.filter((r) => r[key]);
  return {
    type: "box", name, x: shown.map((r) => r.rule), marker: { color },
    q1: shown.map((r) => r[key].q1), median: shown.map((r) => r[key].median),
    q3: shown.map((r) => r[key].q3), lowerfence: shown.map((r) => r[key].low),
    upperfence: shown.map((r) => r[key].high), mean: shown.map((r) => r[key].mean),
  };
}

async function loadTrack(name) {
  if (!name) return;
  const horizon = horizonBox.value;
  track.dataset.loading = "1";
  const record = await MP.getJSON("/api/track-record?horizon=" + horizon + "&dataset=" + encodeURIComponent(name));
  if (name !== dataset || horizon !== horizonBox.value) return;
  const rules = record.rules.filter((r) => r.alerts > 0);
  const axis = { gridcolor: "#26303b", zerolinecolor: "#7d8a98", color: "#7d8a98" };
  const layout = {
    boxmode: "group", height: 360, margin: { t: 36, r: 10, b: 60, l: 70 },
    paper_bgcolor: "#0f1419", plot_bgcolor: "#0f1419", font: { color: "#d8dee6", size: 11 },
    // titles as objects: plotly.js 3 and later draw no title given as a bare string
    xaxis: { ...axis, title: { text: "alert rule" } },
    yaxis: { ...axis, title: { text: "forward return after " + horizon + " bars (%)" } },
    showlegend: true, legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
  };
  await Plotly.react(track, [boxes(rules, "returns", "alerts", "#d62728"),
                             boxes(rules, "baseline", "random bars", "#7f7f7f")], layout,
                     { responsive: true, displaylogo: false });
  const fragment = document.createDocumentFragment();
  for (const r of rules) {
    const tr = document.createElement("tr");
    tr.dataset.rule = r.rule;
    const cells = [r.rule, r.alerts.toLocaleString(),
      r.hit_rate === null ? "–" : pct(r.hit_rate) + " [" + pct(r.hit_low) + ", " + pct(r.hit_high) + "]",
      r.baseline_hit_rate === null ? "–" : pct(r.baseline_hit_rate) + " [" + pct(r.baseline_hit_low) + ", " + pct(r.baseline_hit_high) + "]",
      r.p_value === null ? "–" : r.p_value.toPrecision(2), MP.fmt(r.mean_return_pct, 3), MP.fmt(r.baseline_mean_return_pct, 3)];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    fragment.appendChild(tr);
  }
  document.querySelector("#track-table tbody").replaceChildren(fragment);
  if (record.note) document.getElementById("track-note").textContent = record.note;
  track.dataset.rules = rules.length;
  track.dataset.horizon = horizon;
  track.dataset.dataset = name;
  delete track.dataset.loading;
}
horizonBox.addEventListener("input", () => loadTrack(dataset).catch((e) => console.error(e)));

// the track record is a backtest: it must not hold the live feed back, nor stop it failing
const trackOf = (name) => { loadTrack(name).catch((e) => console.error(e)); };
MP.datasets((name) => pickDataset(name).then(() => trackOf(name)).catch((e) => console.error(e)))
  .then((name) => pickDataset(name).then(() => trackOf(name)))
  .then(() => MP.live((message) => add(message.alerts, message.dataset)))
  .catch((e) => console.error(e));
