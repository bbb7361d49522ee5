// Symbol page: candles with overlays, volume, an indicator pane and a MACD pane and alert
// markers, all of one dataset (the selector in the navigation bar). The indicator pane
// draws any indicator column the rows have (the declared ones: the select in the
// toolbar, remembered as ?indicator=; by default the first RSI column). History comes from the lake
// (/api/bars, /api/indicators, /api/alerts), then the WebSocket pushes each bar and
// indicator row of that dataset as it closes; the lake is re-read every few seconds to
// fill gaps. Bars, indicator rows and alerts share their key: the bar's start.
"use strict";
MP.nav();
const params = new URLSearchParams(location.search);
let symbol = params.get("symbol");
let interval = params.get("timeframe");
let dataset = null;
// the indicator the user picked (?indicator=), else null: the default of the columns present
let picked = params.get("indicator");
let indicator = null;
const chart = document.getElementById("chart");
const REFRESH_MS = 5000;
const BARS = 600;


// Columns of an indicators row that are not indicators.
const KEY_COLUMNS = new Set(["symbol", "timeframe", "bar_start", "bar_end", "close", "dataset"]);
// "rsi_14" -> "RSI 14", "bb_upper" -> "BB UPPER"
const label = (name) => name.replaceAll("_", " ").toUpperCase();
// oscillators between 0 and 100: drawn on that range with the 30 and 70 levels
const bounded = (name) => /^(rsi|mfi|stoch|willr|ultosc|aroon)/.test(name || "");

// The indicator columns of the rows, in the order first seen.
function indicatorColumns(rows) {
  const names = new Set();
  for (const r of rows) for (const name of Object.keys(r)) if (!KEY_COLUMNS.has(name)) names.add(name);
  return [...names];
}

// Fills the indicator select with the rows' columns; keeps the one picked when present.
function setIndicators(rows) {
  const names = indicatorColumns(rows);
  const select = document.getElementById("indicator");
  const listed = [...select.options].map((o) => o.value);
  if (listed.join("\n") !== names.join("\n")) {
    select.replaceChildren(...names.map((name) => new Option(name, name)));
  }
  indicator = names.includes(picked) ? picked
    : names.find((name) => name === "rsi_14") || names.find((name) => name.startsWith("rsi")) || names[0] || null;
  select.value = indicator || "";
}

function layout(maxVolume) {
  const axis = { gridcolor: "#26303b", zerolinecolor: "#26303b", color: "#7d8a98" };
  return {
    paper_bgcolor: "#0f1419", plot_bgcolor: "#0f1419", font: { color: "#d8dee6", size: 11 },
    margin: { l: 60, r: 60, t: 24, b: 30 }, showlegend: true, uirevision: dataset + symbol + interval,
    legend: { orientation: "h", y: 1.04, x: 0 }, hovermode: "x unified",
    xaxis: { ...axis, type: "date", rangeslider: { visible: false }, anchor: "y4" },
    yaxis: { ...axis, domain: [0.46, 1], title: { text: "price" } },
    // volume bars keep to the bottom quarter of the price pane
    yaxis2: { ...axis, domain: [0.46, 1], overlaying: "y", side: "right", showgrid: false,
              title: { text: "volume" }, range: [0, Math.max(1, maxVolume) * 4] },
    yaxis3: { ...axis, domain: [0.24, 0.42], title: { text: indicator ? label(indicator) : "" },
              ...(bounded(indicator) ? { range: [0, 100] } : { autorange: true }) },
    yaxis4: { ...axis, domain: [0, 0.2], title: { text: "MACD" } },
    shapes: bounded(indicator) ? [30, 70].map((level) => ({ type: "line", xref: "paper", x0: 0, x1: 1,
      yref: "y3", y0: level, y1: level, line: { color: "#7d8a98", dash: "dot", width: 1 } })) : [],
  };
}

function traces(bars, rows, alerts) {
  const bx = bars.map((b) => MP.plotTime(b.bar_start));
  const ix = rows.map((r) => MP.plotTime(r.bar_start));
  const col = (name) => rows.map((r) => r[name]);
  // a column the rows lack (not declared) draws nothing: no trace, no legend entry
  const has = (name) => rows.some((r) => r[name] !== undefined);
  const line = (name, label, color, extra = {}) => (has(name) ? {
    type: "scatter", mode: "lines", name: label, x: ix, y: col(name),
    line: { color, width: 1.2 }, ...extra,
  } : null);
  const closes = new Map(bars.map((b) => [b.bar_start, b.close]));
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
    { type: "scatter", mode: "markers", name: "alerts", x: alerts.map((a) => MP.plotTime(a.bar_start)),
      y: alerts.map((a) => closes.get(a.bar_start) ?? null), text: alerts.map((a) => a.rule + ": " + a.message),
      hoverinfo: "text", marker: { symbol: "triangle-down", size: 11, color: "#e0a526" } },
    ...(indicator ? [line(indicator, label(indicator), "#4aa3ff", { yaxis: "y3" })] : []),
    line("macd", "MACD", "#4aa3ff", { yaxis: "y4" }),
    line("macd_signal", "signal", "#e0a526", { yaxis: "y4" }),
    has("macd_hist") ? { type: "bar", name: "MACD hist", x: ix, y: col("macd_hist"), yaxis: "y4",
      marker: { color: col("macd_hist").map((v) => (v >= 0 ? "#2fbf71" : "#e5534b")) } } : null,
  ].filter(Boolean);
}

const UNITS = { s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };
function intervalNs(name) { return Number(name.slice(0, -1)) * UNITS[name.slice(-1)]; }

// The chart's data: bars and indicator rows by bar start, alerts by id; filled from the
// lake, then extended by the bars the WebSocket pushes as they close.
let barsByStart = new Map(), rowsByStart = new Map(), alertsById = new Map();
let socket = null, liveBars = 0, frame = 0;

const byStart = (a, b) => MP.ms(a.bar_start) - MP.ms(b.bar_start);
// pushed rows are drawn only when they are of the chart's dataset
const ours = (row, message) => (row.dataset ?? message.dataset) === dataset;

function keepLatest(map) {
  if (map.size <= BARS) return map;
  return new Map([...map.entries()].sort((a, b) => MP.ms(a[0]) - MP.ms(b[0])).slice(-BARS));
}

function reset() {
  barsByStart = new Map();
  rowsByStart = new Map();
  alertsById = new Map();
  liveBars = 0;
  chart.dataset.live = 0;
  showLast();  // the live price of the series now shown (none yet: blank)
}

// The newest watchlist row of each symbol, of the dataset the pushes name: the snapshot
// sends every row once, later updates only those that changed, so a page that switches
// (or resets) after the snapshot still shows its symbol's last price.
let lastRows = new Map(), lastDataset = null;

function showLast() {
  const row = lastDataset === dataset ? lastRows.get(symbol) : undefined;
  document.getElementById("last").textContent =
    row ? "last " + MP.fmt(row.last, 2) + " (" + MP.signed(row.change_pct, 2, "%") + ")" : "";
}

function subscribe() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ symbol }));
}

function showing() {
  return [dataset, symbol, interval].join("\n");
}

function remember() {
  const query = new URLSearchParams({ dataset, symbol });
  if (interval) query.set("timeframe", interval);
  if (picked) query.set("indicator", picked);
  history.replaceState(null, "", "?" + query);
}

async function load() {
  if (!dataset || !symbol || !interval) return;
  const asked = showing();
  const q = new URLSearchParams({ dataset, symbol, timeframe: interval });
  const [bars, rows, alerts] = await Promise.all([
    MP.getJSON("/api/bars?" + q + "&limit=" + BARS),
    MP.getJSON("/api/indicators?" + q + "&limit=" + BARS),
    MP.getJSON("/api/alerts?" + new URLSearchParams({ dataset, symbol }) + "&limit=500"),
  ]);
  if (asked !== showing()) return;  // switched meanwhile
  for (const b of bars) barsByStart.set(b.bar_start, b);
  for (const r of rows) rowsByStart.set(r.bar_start, r);
  for (const a of alerts) alertsById.set(a.id, a);
  await draw();
}

async function draw() {
  frame = 0;
  barsByStart = keepLatest(barsByStart);
  rowsByStart = keepLatest(rowsByStart);
  const bars = [...barsByStart.values()].sort(byStart);
  const rows = [...rowsByStart.values()].sort(byStart);
  const first = bars.length ? MP.ms(bars[0].bar_start) : 0;
  const shown = [...alertsById.values()].filter(
    (a) => a.dataset === dataset && a.timeframe === interval && MP.ms(a.bar_start) >= first);
  const maxVolume = bars.reduce((m, b) => Math.max(m, b.volume), 0);
  setIndicators(rows);
  await Plotly.react(chart, traces(bars, rows, shown), layout(maxVolume), { responsive: true, displaylogo: false });
  chart.dataset.bars = bars.length;
  chart.dataset.rsi = rows.filter((r) => r.rsi_14 !== null && r.rsi_14 !== undefined).length;
  chart.dataset.macd = rows.filter((r) => r.macd !== null && r.macd !== undefined).length;
  chart.dataset.indicator = indicator || "";
  chart.dataset.indicatorPoints = rows.filter((r) => r[indicator] !== null && r[indicator] !== undefined).length;
  chart.dataset.newest = bars.length ? MP.ms(bars[bars.length - 1].bar_start) : 0;
  chart.dataset.dataset = dataset;
  document.getElementById("info").textContent = bars.length + " bars, " + shown.length + " alerts";
}

function live(message) {
  if (message.dataset !== lastDataset) { lastRows = new Map(); lastDataset = message.dataset; }
  for (const r of message.rows) lastRows.set(r.symbol, r);
  showLast();
  let changed = false;
  for (const a of message.alerts) {
    if (a.symbol === symbol && ours(a, message)) { alertsById.set(a.id, a); changed = true; }
  }
  if (message.symbol === symbol) {
    for (const b of message.bars) {
      if (b.timeframe !== interval || !ours(b, message)) continue;
      if (!barsByStart.has(b.bar_start)) liveBars += 1;
      barsByStart.set(b.bar_start, b);
      changed = true;
    }
    for (const r of message.indicators) {
      if (r.timeframe === interval && ours(r, message)) { rowsByStart.set(r.bar_start, r); changed = true; }
    }
    chart.dataset.live = liveBars;
  }
  if (changed && !frame && barsByStart.size) frame = requestAnimationFrame(() => draw());
}

let symbols = [];

// Lists the dataset's symbols; keeps the symbol shown when the dataset has it.
async function setSymbols() {
  const asked = dataset;
  const list = dataset ? await MP.getJSON("/api/symbols?dataset=" + encodeURIComponent(dataset)) : [];
  if (asked !== dataset) return false;
  symbols = list;
  const select = document.getElementById("symbol");
  select.replaceChildren(...symbols.map((s) => new Option(s.symbol, s.symbol)));
  if (!symbols.some((s) => s.symbol === symbol)) symbol = symbols.length ? symbols[0].symbol : null;
  select.value = symbol;
  setIntervals();
  return true;
}

function pick(name) {
  dataset = name;
  reset();
  setSymbols().then((current) => {
    if (!current) return;
    remember();
    subscribe();
    return load();
  }).catch((e) => console.error(e));
}

async function setup() {
  dataset = await MP.datasets(pick);
  const choice = document.getElementById("indicator");
  choice.addEventListener("change", () => {
    picked = choice.value;
    remember();
    draw().catch((e) => console.error(e));
  });
  const select = document.getElementById("symbol");
  select.addEventListener("change", () => {
    symbol = select.value;
    setIntervals();
    remember();
    reset();
    subscribe();
    load();
  });
  await setSymbols();
  subscribe();
  await load();
  // the lake fills gaps (and is the only source when no pipeline runs here); a dataset
  // whose first bars are not written yet gets its symbols on a later round
  const refresh = async () => {
    if (!dataset) dataset = await MP.datasets(pick);  // an empty lake at first
    if (!symbols.length) {
      if (!(await setSymbols()) || !symbol) return;
      remember();
      subscribe();
    }
    await load();
  };
  setInterval(() => refresh().catch((e) => console.error(e)), REFRESH_MS);
}

function setIntervals() {
  const entry = symbols.find((s) => s.symbol === symbol);
  const names = entry ? entry.timeframes.slice().sort((a, b) => intervalNs(a) - intervalNs(b)) : [];
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
      remember();
      reset();
      load();
    });
    box.appendChild(button);
  }
}

MP.live(live, (ws) => { socket = ws; subscribe(); });
setup().catch((e) => { document.getElementById("info").textContent = String(e); });
