// Pipeline: rates, latency, DLQ and sink, live from the WebSocket, when a pipeline runs here
// or its topics are followed; and what the lake holds of the dataset the live pages show
// (rows, time span, files and last write per table, dead letters by reason), from the lake.
// A dashboard that only reads the lake has no rates: their tiles and chart stay hidden.
"use strict";
MP.nav();
const KEEP = 300;
const times = [], rates = [];

function set(id, text) { document.getElementById(id).textContent = text; }

function show(f) {
  document.body.dataset.figures = f.source;
  if (f.source === "lake") {
    set("source", "A stored dataset, read from the lake: no pipeline streams into this dashboard, "
      + "so there are no rates. Live rates appear when it runs with the pipeline "
      + "(marketpulse run) or follows its topics (marketpulse dashboard --kafka).");
  } else if (f.source === "topics") {
    set("source", "Following the output topics: ticks/s counts the trades of closed bars.");
  } else {
    set("source", "");
  }
  const live = "ticks_per_s" in f;
  for (const box of document.querySelectorAll(".live-only")) box.hidden = !live;
  if (live) {
    set("ticks_per_s", MP.fmt(f.ticks_per_s, 0));
    set("bars_per_s", MP.fmt(f.bars_per_s, 0));
    set("latency_p50_ms", f.latency_p50_ms === null ? "—" : MP.fmt(f.latency_p50_ms, 1) + " ms");
    set("latency_p99_ms", f.latency_p99_ms === null ? "—" : MP.fmt(f.latency_p99_ms, 1) + " ms");
    set("ticks_in", MP.fmt(f.ticks_in, 0));
    set("alerts", MP.fmt(f.alerts, 0));
    times.push(new Date());
    rates.push(f.ticks_per_s);
    if (times.length > KEEP) { times.shift(); rates.shift(); }
    const axis = { gridcolor: "#26303b", color: "#7d8a98" };
    Plotly.react("rate", [{ type: "scatter", mode: "lines+markers", name: "ticks/s", x: times, y: rates,
                            line: { color: "#4aa3ff" }, marker: { size: 3 } }], {
      paper_bgcolor: "#0f1419", plot_bgcolor: "#0f1419", font: { color: "#d8dee6", size: 11 },
      margin: { l: 60, r: 20, t: 10, b: 40 }, xaxis: { ...axis, title: { text: "time (this browser's clock)" } },
      yaxis: { ...axis, rangemode: "tozero", title: { text: "ticks/s" } },
    }, { displaylogo: false, responsive: true });
  }
  set("dlq", MP.fmt(f.dlq, 0));
  if (f.dataset) set("dataset", f.dataset);
  if (f.lag) showLag(f.lag);
}

function rowsOf(tbody, rows) {
  const fragment = document.createDocumentFragment();
  for (const [cells, data] of rows) {
    const tr = document.createElement("tr");
    Object.assign(tr.dataset, data || {});
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text ?? "";
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    fragment.appendChild(tr);
  }
  document.querySelector(tbody).replaceChildren(fragment);
}

function showLag(lag) {
  document.getElementById("lag-box").hidden = false;
  rowsOf("#lag tbody", Object.entries(lag).map(([partition, behind]) => [[[partition], [MP.fmt(behind, 0), "num"]]]));
}

// What the lake holds of the dataset: a table with no files is left out.
function showLake(lake) {
  document.getElementById("lake-box").hidden = !lake;
  if (!lake) return;
  set("lake-title", "in the lake: dataset " + lake.dataset);
  rowsOf("#tables tbody", lake.tables.filter((t) => t.files > 0).map((t) => [[
    [t.table], [MP.fmt(t.rows, 0), "num"], [MP.time(t.first)], [MP.time(t.last)],
    [MP.fmt(t.files, 0), "num"], [MP.time(t.written).replace(/\.\d+$/, "")]], { table: t.table, rows: t.rows }]));
  const reasons = lake.dead_letter_reasons;
  document.getElementById("reasons").hidden = !reasons.length;
  document.getElementById("no-reasons").hidden = reasons.length > 0;
  rowsOf("#reasons tbody", reasons.map((r) => [[[r.reason], [MP.fmt(r.count, 0), "num"]], { reason: r.reason }]));
}

async function refresh() {
  const info = await MP.getJSON("/api/pipeline?dead_letters=20");
  set("sink", info.sink.kind + (info.sink.ready ? " ✓" : " (no files yet)"));
  showLake(info.lake);
  document.getElementById("dead-box").hidden = !info.dead_letters.length;
  rowsOf("#dead tbody", info.dead_letters.map((d) => {
    const where = d.source_file ? d.source_file + ":" + d.source_line
      : d.source_topic ? d.source_topic + "[" + d.source_partition + "]@" + d.source_offset : "";
    return [[[MP.time(d.ts)], [d.reason], [d.error], [where]]];
  }));
}

MP.live((message) => show(message.figures));
refresh().catch((e) => console.error(e));
setInterval(() => refresh().catch((e) => console.error(e)), 5000);
