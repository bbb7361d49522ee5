// Symbol page: candles with overlays, volume, RSI and MACD panes and alert markers.
// History comes from the lake (/api/bars, /api/indicators, /api/alerts), then the
// WebSocket pushes each bar and indicator row as it closes; the lake is re-read
// every few seconds to fill gaps.
"use strict";
MP.nav();
const params = new URLSearchParams(location.search);
let symbol = params.get("symbol");
let interval = params.get("interval");
const chart = document.getElementById("chart");
const REFRESH_MS = 5000;
const BARS = 600;

const when = (ns) => new Date(ns / 1e6);

function layout(maxVolume) {
  const axis = { gridcolor: "#26303b", zerolinecolor: "#26303b", color: "#7d8a98" };
  return {
    paper_bgcolor: "#0f1419", plot_bgcolor: "#0f1419", font: { color: "#d8dee6", size: 11 },
    margin: { l: 60, r: 60, t: 24, b: 30 }, showlegend: true, uirevision: symbol + interval,
    legend: { orientation: "h", y: 1.04, x: 0 }, hovermode: "x unified",
    xaxis: { ...axis, type: "date", rangeslider: { visible: false }, anchor: "y4" },
    yaxis: { ...axis, domain: [0.46, 1], title: { text: "price" } },
    // volume bars keep to the bottom quarter of the price pane
    yaxis2: { ...axis, domain: [0.46, 1], overlaying: "y", side: "right", showgrid: false,
              title: { text: "volume" }, range: [0, Math.max(1, maxVolume) * 4] },
    yaxis3: { ...axis, domain: [0.24, 0.42], range: [0, 100], title: { text: "RSI 14" } },
    yaxis4: { ...axis, domain: [0, 0.2], title: { text: "MACD" } },
    shapes: [30, 70].map((level) => ({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y3",
      y0: level, y1: level, line: { color: "#7d8a98", dash: "dot", width: 1 } })),
  };
}

function traces(bars, rows, alerts) {
  const bx = bars.map((b) => when(b.start));
  const ix = rows.map((r) => when(r.ts - intervalNs(interval)));  // a row belongs to the bar ending at ts
  const col = (name) => rows.map((r) => r[name]);
  const line = (name, label, color, extra = {}) => ({
    type: "scatter", mode: "lines", name: label, x: ix, y: col(name),
    line: { color, width: 1.2 }, ...extra,
  });
  const closes = new Map(bars.map((b) => [b.end, b.close]));
  return [
    { type: "candlestick", name: "price", x: bx, open: bars.map((b) => b.open), high: bars.map((b) => b.high),
      low: bars.map((b) => b.low), close: bars.map((b) => b.close),
      increasing: { line: { color: "#2fbf71" } }, decreasing: { line: { color: "#e5534b" } } },
    { type: "bar", name: "volume", x: bx, y: bars.map((b) => b.volume), yaxis: "y2",
      marker: { color: "rgba(125,138,152,.35)" } },
    line("sma_20", "SMA 20", "#e0a526"),
    line("ema_12", "EMA 12", "#4aa3ff"),
    line("bb_upper", "BB upper", "#8e7cc3", { line: { color: "#8e7cc3", width: 1, dash: "dot" } }),
    line("bb_lower", "BB lower", "#8e7cc3", { line: { color: "#8e7cc3", width: 1, dash: "dot" }, fill: "tonexty",
      fillcolor: "rgba(142,124,195,.08)" }),
    line("vwap", "VWAP", "#d5d5d5", { line: { color: "#d5d5d5", width: 1, dash: "dash" } }),
    { type: "scatter", mode: "markers", name: "alerts", x: alerts.map((a) => when(a.ts - intervalNs(a.interval))),
      y: alerts.map((a) => closes.get(a.ts) ?? null), text: alerts.map((a) => a.rule + ": " + a.message),
      hoverinfo: "text", marker: { symbol: "triangle-down", size: 11, color: "#e0a526" } },
    line("rsi_14", "RSI 14", "#4aa3ff", { yaxis: "y3" }),
    line("macd", "MACD", "#4aa3ff", { yaxis: "y4" }),
    line("macd_signal", "signal", "#e0a526", { yaxis: "y4" }),
    { type: "bar", name: "MACD hist", x: ix, y: col("macd_hist"), yaxis: "y4",
      marker: { color: col("macd_hist").map((v) => (v >= 0 ? "#2fbf71" : "#e5534b")) } },
  ];
}

const UNITS = { s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };
function intervalNs(name) { return Number(name.slice(0, -1)) * UNITS[name.slice(-1)]; }

// The chart's data: bars by start, indicator rows by ts, alerts by id; filled from the
// lake, then extended by the bars the WebSocket pushes as they close.
let barsByStart = new Map(), rowsByTs = new Map(), alertsById = new Map();
let socket = null, liveBars = 0, frame = 0;

function keepLatest(map) {
  if (map.size <= BARS) return map;
  return new Map([...map.entries()].sort((a, b) => a[0] - b[0]).slice(-BARS));
}

function reset() {
  barsByStart = new Map();
  rowsByTs = new Map();
  alertsById = new Map();
  liveBars = 0;
  chart.dataset.live = 0;
}

function subscribe() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ symbol }));
}

async function load() {
  if (!symbol || !interval) return;
  const asked = symbol + interval;
  const q = "symbol=" + encodeURIComponent(symbol) + "&interval=" + encodeURIComponent(interval);
  const [bars, rows, alerts] = await Promise.all([
    MP.getJSON("/api/bars?" + q + "&limit=" + BARS),
    MP.getJSON("/api/indicators?" + q + "&limit=" + BARS),
    MP.getJSON("/api/alerts?symbol=" + encodeURIComponent(symbol) + "&limit=500"),
  ]);
  if (asked !== symbol + interval) return;  // switched meanwhile
  for (const b of bars) barsByStart.set(b.start, b);
  for (const r of rows) rowsByTs.set(r.ts, r);
  for (const a of alerts) alertsById.set(a.id, a);
  await draw();
}

async function draw() {
  frame = 0;
  barsByStart = keepLatest(barsByStart);
  rowsByTs = keepLatest(rowsByTs);
  const bars = [...barsByStart.values()].sort((a, b) => a.start - b.start);
  const rows = [...rowsByTs.values()].sort((a, b) => a.ts - b.ts);
  const first = bars.length ? bars[0].start : 0;
  const shown = [...alertsById.values()].filter((a) => a.interval === interval && a.ts > first);
  const maxVolume = bars.reduce((m, b) => Math.max(m, b.volume), 0);
  await Plotly.react(chart, traces(bars, rows, shown), layout(maxVolume), { responsive: true, displaylogo: false });
  chart.dataset.bars = bars.length;
  chart.dataset.rsi = rows.filter((r) => r.rsi_14 !== null).length;
  chart.dataset.macd = rows.filter((r) => r.macd !== null).length;
  chart.dataset.newest = bars.length ? bars[bars.length - 1].start : 0;
  document.getElementById("info").textContent = bars.length + " bars, " + shown.length + " alerts";
}

function live(message) {
  const row = message.rows.find((r) => r.symbol === symbol);
  if (row) document.getElementById("last").textContent = "last " + MP.fmt(row.last, 2) + " (" + MP.signed(row.change_pct, 2, "%") + ")";
  let changed = false;
  for (const a of message.alerts) {
    if (a.symbol === symbol) { alertsById.set(a.id, a); changed = true; }
  }
  if (message.symbol === symbol) {
    for (const b of message.bars) {
      if (b.interval !== interval) continue;
      if (!barsByStart.has(b.start)) liveBars += 1;
      barsByStart.set(b.start, b);
      changed = true;
    }
    for (const r of message.indicators) {
      if (r.interval === interval) { rowsByTs.set(r.ts, r); changed = true; }
    }
    chart.dataset.live = liveBars;
  }
  if (changed && !frame && barsByStart.size) frame = requestAnimationFrame(() => draw());
}

async function setup() {
  const symbols = await MP.getJSON("/api/symbols");
  const select = document.getElementById("symbol");
  for (const s of symbols) select.add(new Option(s.symbol, s.symbol));
  if (!symbol && symbols.length) symbol = symbols[0].symbol;
  select.value = symbol;
  select.addEventListener("change", () => {
    symbol = select.value;
    history.replaceState(null, "", "?symbol=" + symbol);
    setIntervals(symbols);
    reset();
    subscribe();
    load();
  });
  setIntervals(symbols);
  subscribe();
  await load();
  // the lake fills gaps (and is the only source when no pipeline runs here)
  setInterval(() => load().catch((e) => console.error(e)), REFRESH_MS);
}

function setIntervals(symbols) {
  const entry = symbols.find((s) => s.symbol === symbol);
  const names = entry ? entry.intervals.slice().sort((a, b) => intervalNs(a) - intervalNs(b)) : [];
  if (!names.includes(interval)) interval = names[0] || null;
  const box = document.getElementById("intervals");
  box.replaceChildren();
  for (const name of names) {
    const button = document.createElement("button");
    button.textContent = name;
    button.dataset.interval = name;
    if (name === interval) button.className = "active";
    button.addEventListener("click", () => {
      interval = name;
      for (const other of box.children) other.className = other === button ? "active" : "";
      history.replaceState(null, "", "?symbol=" + symbol + "&interval=" + interval);
      reset();
      load();
    });
    box.appendChild(button);
  }
}

MP.live(live, (ws) => { socket = ws; subscribe(); });
setup().catch((e) => { document.getElementById("info").textContent = String(e); });
