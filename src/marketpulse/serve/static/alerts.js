// Alerts: a live feed (newest first) with filters by symbol, rule and severity.
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

function add(list) {
  let added = 0;
  for (const alert of list) {
    if (seen.has(alert.id)) continue;
    seen.add(alert.id);
    alerts.push(alert);
    added += 1;
    if (!rules.has(alert.rule)) {
      rules.add(alert.rule);
      ruleBox.add(new Option(alert.rule, alert.rule));
    }
  }
  if (!added) return;
  alerts.sort((a, b) => b.ts - a.ts);
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
    tr.dataset.ts = a.ts;
    for (const [text, cls] of [[MP.time(a.ts), ""], [a.symbol, ""], [a.interval, ""], [a.rule, "rule"],
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
MP.getJSON("/api/alerts?limit=500").then(add).catch((e) => console.error(e));
MP.live((message) => add(message.alerts));
