// Alerts of one dataset (the selector in the navigation bar): a live feed, newest first,
// with filters by symbol, rule and severity.
"use strict";
MP.nav();
const KEEP = 2000;
const body = document.querySelector("#alerts tbody");
const symbolBox = document.getElementById("symbol");
const ruleBox = document.getElementById("rule");
const severityBox = document.getElementById("severity");
const seen = new Set();
const rules = new Set();
let alerts = [];  // newest first
let dataset = null;

function add(list, fallback) {
  let added = 0;
  for (const alert of list) {
    if ((alert.dataset ?? fallback) !== dataset || seen.has(alert.id)) continue;
    seen.add(alert.id);
    alerts.push(alert);
    added += 1;
    if (!rules.has(alert.rule)) {
      rules.add(alert.rule);
      ruleBox.add(new Option(alert.rule, alert.rule));
    }
  }
  if (!added) return;
  alerts.sort((a, b) => MP.ms(b.bar_end) - MP.ms(a.bar_end));
  alerts = alerts.slice(0, KEEP);
  render();
}

function render() {
  const symbol = symbolBox.value.trim().toUpperCase();
  const rule = ruleBox.value, severity = severityBox.value;
  const shown = alerts.filter((a) => (!symbol || a.symbol.toUpperCase().includes(symbol))
    && (!rule || a.rule === rule) && (!severity || a.severity === severity));
  const fragment = document.createDocumentFragment();
  for (const a of shown.slice(0, 500)) {
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
  document.getElementById("count").textContent = shown.length + " of " + alerts.length + " alerts";
}

for (const box of [symbolBox, ruleBox, severityBox]) box.addEventListener("input", render);
async function load(name) {
  dataset = name;
  seen.clear();
  alerts = [];
  render();
  if (!dataset) return;
  const list = await MP.getJSON("/api/alerts?limit=500&dataset=" + encodeURIComponent(dataset));
  if (name === dataset) add(list);
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
MP.datasets((name) => load(name).then(() => trackOf(name)).catch((e) => console.error(e)))
  .then((name) => load(name).then(() => trackOf(name)))
  .then(() => MP.live((message) => add(message.alerts, message.dataset)))
  .catch((e) => console.error(e));
