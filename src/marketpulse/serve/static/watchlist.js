// Watchlist: one row per symbol of the dataset the live view shows, cells updated in place
// and flashed on change; a symbol links to its chart in that dataset. Rows in view are
// drawn in the frame after an update arrives; rows out of view at most once a second
// (and as soon as they come into view), so a long list costs what its visible part does.
// A flash fades in two steps drawn with the updates, not in an animation: an animation
// redraws its cell every frame, and hundreds of them made the page paint 60 times a second.
"use strict";
MP.nav();
const body = document.querySelector("#watchlist tbody");
const filterBox = document.getElementById("filter");
const rows = new Map();  // symbol -> {tr, cells, data (drawn), row (latest), shown (in view)}
const pending = new Map();  // symbol -> latest row not drawn yet
const hidden = new Set();  // entries out of view with a row not drawn yet
let sortKey = "symbol", sortDir = 1, needsOrder = true, lastOrder = 0, frame = 0;
let lastSweep = 0, sweepTimer = 0, flashTimer = 0;
const SWEEP_MS = 1000;
const FLASH_MS = 700;  // a changed cell is flashed this long: strong, then faded for the second half
const FADE_SLACK_MS = 100;
const flashing = new Map();  // td -> when its flash started
const inView = new IntersectionObserver((changes) => {
  for (const change of changes) {
    const entry = rows.get(change.target.dataset.symbol);
    if (!entry) continue;
    entry.shown = change.isIntersecting;
    if (entry.shown && hidden.delete(entry)) draw(entry, entry.row, false);
  }
});
let dataset = null;

const COLUMNS = [
  ["symbol", (r) => r.symbol],
  ["last", (r) => MP.fmt(r.last, 2)],
  ["change_pct", (r) => MP.signed(r.change_pct, 2, "%")],
  ["volume", (r) => MP.fmt(r.volume, 0)],
  ["rsi", (r) => MP.fmt(r.rsi, 1)],
  ["macd_hist", (r) => MP.signed(r.macd_hist, 4)],
  ["vwap_dist_pct", (r) => MP.signed(r.vwap_dist_pct, 2, "%")],
  ["alert", (r) => r.alert || ""],
];

function makeRow(symbol) {
  const tr = document.createElement("tr");
  tr.dataset.symbol = symbol;
  const cells = {};
  for (const [key] of COLUMNS) {
    const td = document.createElement("td");
    td.className = key === "symbol" || key === "alert" ? key : "num " + key;
    if (key === "symbol") {
      const a = document.createElement("a");
      a.href = "/symbol?" + new URLSearchParams(dataset ? { dataset, symbol } : { symbol });
      a.textContent = symbol;
      td.appendChild(a);
    }
    tr.appendChild(td);
    cells[key] = td;
  }
  const entry = { tr, cells, data: {}, row: null, shown: false };
  rows.set(symbol, entry);
  inView.observe(tr);
  needsOrder = true;
  return entry;
}

function draw(entry, row, flash = true) {
  for (const [key, text] of COLUMNS) {
    if (key === "symbol" || entry.data[key] === row[key]) continue;
    const td = entry.cells[key];
    const before = entry.data[key];
    td.textContent = text(row);
    if (key === "change_pct" || key === "macd_hist" || key === "vwap_dist_pct") {
      td.classList.toggle("pos", row[key] > 0);
      td.classList.toggle("neg", row[key] < 0);
    }
    if (key === "rsi") td.classList.toggle("hot", row.rsi !== null && (row.rsi >= 70 || row.rsi <= 30));
    if (key === "alert") td.title = row.alert || "";
    if (flash && before !== undefined && typeof row[key] === "number" && typeof before === "number") {
      const up = row[key] > before;
      td.classList.toggle("flash-up", up);
      td.classList.toggle("flash-down", !up);
      td.classList.remove("faded");
      flashing.set(td, performance.now());
    }
  }
  entry.data = row;
  if (sortKey !== "symbol") needsOrder = true;
}

function visible(entry) {
  const text = filterBox.value.trim().toUpperCase();
  if (!text) return true;
  return entry.row.symbol.toUpperCase().includes(text) || (entry.row.alert || "").toUpperCase().includes(text);
}

function order() {
  const entries = [...rows.values()].filter(visible);
  entries.sort((a, b) => {
    const x = a.row[sortKey], y = b.row[sortKey];
    if (x === y) return a.row.symbol < b.row.symbol ? -1 : 1;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * sortDir;
  });
  const fragment = document.createDocumentFragment();
  for (const entry of entries) fragment.appendChild(entry.tr);
  body.replaceChildren(fragment);
  document.getElementById("count").textContent = entries.length + " of " + rows.size + " symbols";
  showState(entries.length);
  needsOrder = false;
  lastOrder = performance.now();
}

// Under the table: loading until the first update, then why it is empty (no rows yet, or
// none the filter matches), else nothing.
let received = false;
const stateBox = document.getElementById("state");
function showState(shown) {
  let [state, text] = ["", ""];
  if (!received) [state, text] = ["loading", "Loading the watchlist…"];
  else if (!rows.size) {
    [state, text] = ["empty", dataset
      ? "No symbols in " + dataset + " yet: its rows appear as its first bars are written."
      : "No data yet: start a pipeline (marketpulse run) or replay a file into this lake."];
  } else if (!shown) [state, text] = ["no-match", "No symbol or alert matches “" + filterBox.value.trim() + "”."];
  stateBox.dataset.state = state;
  stateBox.textContent = text;
  stateBox.hidden = !state;
}

function render() {
  frame = 0;
  for (const [symbol, row] of pending) {
    const known = rows.get(symbol);
    const entry = known || makeRow(symbol);
    entry.row = row;
    if (!known || entry.shown) {
      hidden.delete(entry);
      draw(entry, row);
    } else {
      hidden.add(entry);
      if (sortKey !== "symbol") needsOrder = true;
    }
  }
  pending.clear();
  const now = performance.now();
  fade(now);
  if (hidden.size && now - lastSweep > SWEEP_MS) {
    lastSweep = now;
    for (const entry of hidden) draw(entry, entry.row, false);
    hidden.clear();
  } else if (hidden.size && !sweepTimer) {  // the rows out of view wait for the next sweep
    sweepTimer = setTimeout(() => { sweepTimer = 0; schedule(); }, SWEEP_MS - (now - lastSweep));
  }
  // live values re-sort at most once a second, so rows do not jump under the pointer
  if (needsOrder && (sortKey === "symbol" || performance.now() - lastOrder > 1000)) order();
}

// Fades and ends the flashes due. Updates draw often enough to do it on their way; a timer,
// set later than the next step so that it does not add frames of its own, serves when they stop.
function fade(now) {
  let next = Infinity;
  for (const [td, start] of flashing) {
    const age = now - start;
    if (age >= FLASH_MS) {
      td.classList.remove("flash-up", "flash-down", "faded");
      flashing.delete(td);
    } else if (age >= FLASH_MS / 2) {
      if (!td.classList.contains("faded")) td.classList.add("faded");
      next = Math.min(next, start + FLASH_MS);
    } else {
      next = Math.min(next, start + FLASH_MS / 2);
    }
  }
  clearTimeout(flashTimer);
  if (next < Infinity) flashTimer = setTimeout(schedule, next - now + FADE_SLACK_MS);
}

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

for (const th of document.querySelectorAll("#watchlist th")) {
  th.addEventListener("click", () => {
    sortDir = sortKey === th.dataset.key ? -sortDir : 1;
    sortKey = th.dataset.key;
    for (const other of document.querySelectorAll("#watchlist th")) other.className = other.className.replace(/ ?sorted-\w+/, "");
    th.classList.add(sortDir > 0 ? "sorted-asc" : "sorted-desc");
    lastOrder = 0;
    order();
  });
}
filterBox.addEventListener("input", () => order());

MP.live((message) => {
  if ((message.dataset ?? null) !== dataset) {  // another dataset: none of the rows shown is of it
    dataset = message.dataset ?? null;
    for (const entry of rows.values()) inView.unobserve(entry.tr);
    rows.clear();
    pending.clear();
    hidden.clear();
    flashing.clear();
    body.replaceChildren();
    needsOrder = true;
  }
  for (const row of message.rows) pending.set(row.symbol, row);
  if (message.rows.length) schedule();
  if (!received || !rows.size) {
    received = true;
    if (!message.rows.length) showState(0);
  }
});
