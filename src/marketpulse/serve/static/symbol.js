// Symbol page: candles with overlays, volume, an indicator pane and a MACD pane and alert
// markers (a style per rule: markers.js), all of one dataset (the selector in the navigation
// bar). The indicator pane draws any indicator column the rows have (the declared ones: the
// select in the toolbar, remembered as ?indicator=; by default the first RSI column).
// History comes from the lake (/api/bars, /api/indicators, /api/alerts): the latest bars
// first, earlier ones as the chart is panned or zoomed back or a range (1D ... all) is
// picked; then the WebSocket pushes each bar and indicator row of that dataset as it closes,
// and the lake is re-read every few seconds to fill gaps. Bars, indicator rows and alerts
// share their key: the bar's start. Times are drawn in the exchange's time zone (the
// server's time_zone), or in UTC (?tz=UTC): a click on the zone buttons.
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
const BARS = 600;  // the latest bars, read first
const EARLIER = 20000;  // most bars read at once when going back
const MAX_BARS = 100000;  // most bars kept (the oldest go first)
const SPANS = { "1D": 86400e3, "1W": 7 * 86400e3, "1M": 31 * 86400e3, "1Y": 366 * 86400e3 };
// the time zone of the axis: the exchange's (set once the server named it), or UTC
let zone = (params.get("tz") || "").toUpperCase() === "UTC" ? "UTC" : null;
let range = null;  // the range picked (1D ... all), until the user pans or zooms


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
    margin: { l: 60, r: 60, t: 72, b: 44 }, showlegend: true,
    uirevision: [dataset, symbol, interval, zone].join(" "),
    // above the panes, in the traces' order (Plotly reverses a legend with bars by default)
    legend: { orientation: "h", y: 1, yanchor: "bottom", x: 0, traceorder: "normal" },
    hovermode: "x unified",
    xaxis: { ...axis, type: "date", rangeslider: { visible: false }, anchor: "y4",
             title: { text: daily() ? "session date" : zone === "UTC" ? "time (UTC)" : "time (" + zone + ", the exchange's)" } },
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
  const bx = bars.map((b) => MP.plotTime(b.bar_start, axisZone()));
  const ix = rows.map((r) => MP.plotTime(r.bar_start, axisZone()));
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
    ...Markers.traces(alerts, (a) => [MP.plotTime(a.bar_start, axisZone()), closes.get(a.bar_start) ?? null]),
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
  if (map.size <= MAX_BARS) return map;
  return new Map([...map.entries()].sort((a, b) => MP.ms(a[0]) - MP.ms(b[0])).slice(-MAX_BARS));
}

// The oldest bar read (ms; Infinity: none) and whether the lake has none older.
let earliest = Infinity, complete = false;
let covered = Infinity;  // from when on every bar has been read (ms)

function reset() {
  barsByStart = new Map();
  rowsByStart = new Map();
  alertsById = new Map();
  liveBars = 0;
  earliest = Infinity;
  complete = false;
  covered = Infinity;
  fresh = true;  // the next read is drawn, even without a bar
  pickRange(null);
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
  if (zone === "UTC") query.set("tz", "UTC");
  history.replaceState(null, "", "?" + query);
}

const iso = (ms) => new Date(ms).toISOString();

// Reads bars, indicator rows and alerts of the series shown and merges them in: the latest
// ``limit`` bars starting before ``end`` (ms) and at or after ``start`` (ms), when given.
async function read({ start = null, end = null, limit = BARS } = {}) {
  const asked = showing();
  const q = new URLSearchParams({ dataset, symbol, timeframe: interval, limit });
  if (start !== null) q.set("start", iso(start));
  if (end !== null) q.set("end", iso(end));
  const [bars, rows] = await Promise.all([
    MP.getJSON("/api/bars?" + q), MP.getJSON("/api/indicators?" + q),
  ]);
  if (asked !== showing()) return false;  // switched meanwhile
  for (const b of bars) if (!barsByStart.has(b.bar_start)) { barsByStart.set(b.bar_start, b); fresh = true; }
  for (const r of rows) if (!rowsByStart.has(r.bar_start)) { rowsByStart.set(r.bar_start, r); fresh = true; }
  if (bars.length) earliest = Math.min(earliest, MP.ms(bars[0].bar_start));
  // fewer than asked for: none between ``start`` and those (and without a start, none older)
  if (bars.length < limit && start === null) complete = true;
  covered = Math.min(covered, bars.length < limit ? (start ?? -Infinity) : earliest);
  return true;
}

// The alerts of the series from the oldest bar read on (a rule's alerts of other
// timeframes are not drawn on this one's candles).
async function readAlerts() {
  const asked = showing();
  const q = new URLSearchParams({ dataset, symbol, limit: 100000 });
  if (earliest < Infinity) q.set("start", iso(earliest));
  const alerts = await MP.getJSON("/api/alerts?" + q);
  if (asked !== showing()) return false;
  for (const a of alerts) if (!alertsById.has(a.id)) { alertsById.set(a.id, a); fresh = true; }
  return true;
}

// Whether bars, rows or alerts were read that are not drawn yet: a series that did not
// change is not drawn again (thousands of candles take a while).
let fresh = false;

async function load() {
  if (!dataset || !symbol || !interval) return;
  if (await read() && await readAlerts() && (fresh || !drawn.length)) await draw();
  await readForecasts();
}

// The forecasting models' latest call on the series and how their calls went on it
// (/api/forecasts); the section shows only where the pipeline ran models (--forecast).
async function readForecasts() {
  const asked = showing();
  const q = new URLSearchParams({ dataset, symbol, timeframe: interval });
  const rows = await MP.getJSON("/api/forecasts?" + q);
  if (asked !== showing()) return;
  const section = document.getElementById("forecasts");
  section.hidden = !rows.length;
  const arrow = { 1: "up", "-1": "down", 0: "none" };
  const cells = (r) => [
    r.model, r.horizon, arrow[r.direction] ?? "",
    r.probability === null ? "" : MP.fmt(r.probability, 3),
    r.value === null ? "" : MP.signed(r.value * 100, 3, " %"),
    r.resolved ? MP.fmt(100 * r.hits / r.resolved, 1) + " % of " + MP.fmt(r.resolved, 0) : "",
  ];
  const body = section.querySelector("tbody");
  body.replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.model = r.model;
    for (const text of cells(r)) {
      const td = document.createElement("td");
      td.textContent = String(text);
      tr.append(td);
    }
    return tr;
  }));
}

// Reads the bars before the oldest read, back to ``from`` (ms; null: as far as EARLIER
// bars go, or ``limit``), then draws them.
let reading = null;
async function readEarlier(from, limit = EARLIER) {
  if (complete || reading || (from !== null && from >= covered)) return reading;
  const end = earliest < Infinity ? earliest : null;
  reading = (async () => {
    chart.dataset.loading = "1";
    try {
      if (await read({ start: from, end, limit }) && await readAlerts()) await draw();
    } finally {
      reading = null;
      delete chart.dataset.loading;
    }
  })();
  return reading;
}

let drawn = [];  // the bars drawn, oldest first

async function draw() {
  frame = 0;
  fresh = false;
  if (barsByStart.size > MAX_BARS) {
    barsByStart = keepLatest(barsByStart);
    rowsByStart = keepLatest(rowsByStart);
    complete = false;
    covered = Infinity;
  }
  const bars = [...barsByStart.values()].sort(byStart);
  const rows = [...rowsByStart.values()].sort(byStart);
  const first = bars.length ? MP.ms(bars[0].bar_start) : 0;
  earliest = bars.length ? first : Infinity;
  const shown = [...alertsById.values()].filter(
    (a) => a.dataset === dataset && a.timeframe === interval && MP.ms(a.bar_start) >= first);
  const maxVolume = bars.reduce((m, b) => Math.max(m, b.volume), 0);
  setIndicators(rows);
  drawn = bars;
  await Plotly.react(chart, traces(bars, rows, shown), layout(maxVolume),
    { responsive: true, displaylogo: false, scrollZoom: true });  // the wheel zooms, as on a trading chart
  listen();
  if (range) showRange(range);
  chart.dataset.bars = bars.length;
  chart.dataset.first = first;
  chart.dataset.complete = complete ? "1" : "";
  chart.dataset.zone = axisZone();
  document.getElementById("zones").hidden = daily();  // dates: no zone to pick
  chart.dataset.rsi = rows.filter((r) => r.rsi_14 !== null && r.rsi_14 !== undefined).length;
  chart.dataset.macd = rows.filter((r) => r.macd !== null && r.macd !== undefined).length;
  chart.dataset.indicator = indicator || "";
  chart.dataset.indicatorPoints = rows.filter((r) => r[indicator] !== null && r[indicator] !== undefined).length;
  chart.dataset.newest = bars.length ? MP.ms(bars[bars.length - 1].bar_start) : 0;
  chart.dataset.dataset = dataset;
  document.getElementById("info").textContent = MP.fmt(bars.length, 0) + " bars" + (complete ? " (all)" : "")
    + ", " + MP.fmt(shown.length, 0) + " alerts";
}

// The zone the x axis is drawn in: a bar of a day or longer is a session date, the same in
// every zone (it starts at midnight UTC of that date), so it is drawn as it is.
const daily = () => Boolean(interval) && intervalNs(interval) >= 86400e9;
const axisZone = () => (daily() ? "UTC" : zone);

// The x range drawn, as ms [from, to]; our own changes of it are told apart from the user's.
let applying = false;

async function relayout(update) {
  applying = true;
  try { await Plotly.relayout(chart, update); } finally { applying = false; }
}

// Fits the price pane to the bars between ``from`` and ``to`` (ms): a year of daily bars
// is not drawn on the scale of sixty.
function fitPrices(from, to) {
  let low = Infinity, high = -Infinity;
  for (const b of drawn) {
    const t = MP.ms(b.bar_start);
    if (t >= from && t <= to) { low = Math.min(low, b.low); high = Math.max(high, b.high); }
  }
  if (low > high) return {};
  const pad = (high - low) * 0.05 || high * 0.01 || 1;
  return { "yaxis.range": [low - pad, high + pad] };
}

function pickRange(name) {
  range = name;
  rangeRead = null;
  for (const button of document.querySelectorAll("#ranges button")) {
    button.classList.toggle("active", button.dataset.range === name);
  }
  chart.dataset.range = name || "";
}

// Shows the last ``name`` (1D ... 1Y) of the series up to its newest bar, or all of it
// (reading the bars it needs once: drawing them shows the range again).
let rangeRead = null;
async function showRange(name) {
  if (!drawn.length) return;
  const newest = MP.ms(drawn[drawn.length - 1].bar_end);
  const from = name === "all" ? null : newest - SPANS[name];
  if (reading) await reading;  // bars on their way may be those this range needs
  if (rangeRead !== name && !complete && (from === null || from < covered)) {
    rangeRead = name;
    await readEarlier(from, MAX_BARS);
    return;
  }
  if (name === "all") {
    await relayout({ "xaxis.autorange": true, "yaxis.autorange": true });
  } else {
    await relayout({ "xaxis.range": [MP.plotTime(iso(from), axisZone()), MP.plotTime(iso(newest), axisZone())],
                     ...fitPrices(from, newest) });
  }
}

let listening = false;

function listen() {
  if (listening) return;
  listening = true;
  chart.on("plotly_relayout", (event) => {
    if (applying) return;
    const start = event["xaxis.range[0]"] ?? (event["xaxis.range"] || [])[0];
    if (start === undefined) return;
    const end = event["xaxis.range[1]"] ?? event["xaxis.range"][1];
    pickRange(null);  // panned or zoomed: no range button applies
    const from = MP.fromPlotTime(start, axisZone()), to = MP.fromPlotTime(end, axisZone());
    // going back past the oldest bar read: read those before it, and half a view more
    if (from < earliest) readEarlier(from - (to - from) / 2).catch((e) => console.error(e));
  });
  chart.on("plotly_legendclick", (event) => {
    const rule = event.data[event.curveNumber].meta?.rule;
    if (!rule) return true;  // another trace: Plotly shows or hides it
    chart.dataset.hiddenRules = [...(Markers.toggle(rule), Markers.hidden)].sort().join(",");
    draw().catch((e) => console.error(e));
    return false;
  });
}

function setZones(exchange) {
  if (!zone) zone = exchange;
  const box = document.getElementById("zones");
  const city = (name) => name.split("/").pop().replaceAll("_", " ");
  const choices = exchange === "UTC" ? ["UTC"] : [exchange, "UTC"];
  box.replaceChildren(...choices.map((name) => {
    const button = document.createElement("button");
    button.textContent = name === "UTC" ? "UTC" : city(name);
    button.title = name === "UTC" ? "Times in UTC" : "Times in " + name + ", the exchange's time zone";
    button.dataset.zone = name;
    button.className = name === zone ? "active" : "";
    button.addEventListener("click", () => {
      zone = name;
      for (const other of box.children) other.className = other === button ? "active" : "";
      remember();
      draw().catch((e) => console.error(e));
    });
    return button;
  }));
}

for (const button of document.querySelectorAll("#ranges button")) {
  button.addEventListener("click", () => {
    pickRange(button.dataset.range);
    showRange(button.dataset.range).catch((e) => console.error(e));
  });
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

let symbols = [], ruleDataset = null;

// Lists the dataset's symbols; keeps the symbol shown when the dataset has it.
async function setSymbols() {
  const asked = dataset;
  const list = dataset ? await MP.getJSON("/api/symbols?dataset=" + encodeURIComponent(dataset)) : [];
  if (asked !== dataset) return false;
  symbols = list;
  if (dataset && ruleDataset !== dataset) {  // each rule's marker style: by the dataset's rules
    const counted = await MP.getJSON("/api/alerts/count?dataset=" + encodeURIComponent(dataset));
    if (asked !== dataset) return false;
    Markers.setRules(counted.by_rule.map((r) => r.rule));
    ruleDataset = dataset;
  }
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
  setZones(document.body.dataset.exchangeZone || "UTC");
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
