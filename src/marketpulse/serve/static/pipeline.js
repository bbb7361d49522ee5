// Pipeline: rates, latency, DLQ and sink, live from the WebSocket; the dead letters of the
// dataset the live pages show, from the lake.
"use strict";
MP.nav();
const KEEP = 300;
const times = [], rates = [];

function set(id, text) { document.getElementById(id).textContent = text; }

function show(f) {
  if (f.source === "lake") {
    set("source", "Reading the lake: live rates appear when the dashboard runs with the pipeline "
      + "(marketpulse run) or follows its topics (marketpulse dashboard --kafka).");
  } else if (f.lag) {
    set("source", "Following the output topics: ticks/s counts the trades of closed bars.");
  }
  if ("ticks_per_s" in f) {
    set("ticks_per_s", MP.fmt(f.ticks_per_s, 0));
    set("bars_per_s", MP.fmt(f.bars_per_s, 0));
    set("latency_p50_ms", f.latency_p50_ms === null ? "—" : MP.fmt(f.latency_p50_ms, 1) + " ms");
    set("latency_p99_ms", f.latency_p99_ms === null ? "—" : MP.fmt(f.latency_p99_ms, 1) + " ms");
    set("ticks_in", MP.fmt(f.ticks_in, 0));
    set("alerts", MP.fmt(f.alerts, 0));
    times.push(new Date());
    rates.push(f.ticks_per_s);
    if (times.length > KEEP) { times.shift(); rates.shift(); }
    Plotly.react("rate", [{ type: "scatter", mode: "lines+markers", x: times, y: rates, line: { color: "#4aa3ff" }, marker: { size: 3 } }], {
      paper_bgcolor: "#0f1419", plot_bgcolor: "#0f1419", font: { color: "#d8dee6", size: 11 },
      margin: { l: 60, r: 20, t: 10, b: 30 }, xaxis: { gridcolor: "#26303b" }, yaxis: { gridcolor: "#26303b", rangemode: "tozero" },
    }, { displaylogo: false, responsive: true });
  }
  set("dlq", MP.fmt(f.dlq, 0));
  if (f.dataset) set("dataset", f.dataset);
  if (f.lag) showLag(f.lag);
}

function showLag(lag) {
  document.getElementById("lag-box").hidden = false;
  const fragment = document.createDocumentFragment();
  for (const [partition, behind] of Object.entries(lag)) {
    const tr = document.createElement("tr");
    tr.innerHTML = '<td></td><td class="num"></td>';
    tr.cells[0].textContent = partition;
    tr.cells[1].textContent = MP.fmt(behind, 0);
    fragment.appendChild(tr);
  }
  document.querySelector("#lag tbody").replaceChildren(fragment);
}

async function deadLetters() {
  const info = await MP.getJSON("/api/pipeline?dead_letters=20");
  set("sink", info.sink.kind + (info.sink.ready ? " ✓" : " (no files yet)"));
  const fragment = document.createDocumentFragment();
  for (const d of info.dead_letters) {
    const tr = document.createElement("tr");
    const where = d.source_file ? d.source_file + ":" + d.source_line
      : d.source_topic ? d.source_topic + "[" + d.source_partition + "]@" + d.source_offset : "";
    for (const text of [MP.time(d.ts), d.reason, d.error, where]) {
      const td = document.createElement("td");
      td.textContent = text ?? "";
      tr.appendChild(td);
    }
    fragment.appendChild(tr);
  }
  document.querySelector("#dead tbody").replaceChildren(fragment);
}

MP.live((message) => show(message.figures));
deadLetters().catch((e) => console.error(e));
setInterval(() => deadLetters().catch((e) => console.error(e)), 5000);
