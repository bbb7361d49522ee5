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

MP.datasets((name) => load(name).catch((e) => console.error(e)))
  .then(load)
  .then(() => MP.live((message) => add(message.alerts, message.dataset)))
  .catch((e) => console.error(e));
