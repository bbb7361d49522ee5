// Shared by every page: navigation, the dataset selector, number and time formats and the
// live WebSocket. Times arrive as ISO 8601 UTC text ("2013-10-07T13:31:00Z").
"use strict";
const MP = (() => {
  const PAGES = [["/", "Watchlist"], ["/symbol", "Symbol"], ["/alerts", "Alerts"], ["/pipeline", "Pipeline"]];

  function nav() {
    const bar = document.createElement("nav");
    bar.innerHTML = '<span class="brand">MarketPulse</span>';
    for (const [href, label] of PAGES) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = label;
      if (location.pathname === href) a.className = "active";
      bar.appendChild(a);
    }
    const status = document.createElement("span");
    status.id = "status";
    status.className = "status";
    status.textContent = "connecting";
    bar.appendChild(status);
    document.body.prepend(bar);
  }

  // one Intl.NumberFormat per number of digits: making one per value (toLocaleString) cost
  // the watchlist most of its script time
  const formats = new Map();

  function fmt(value, digits = 2) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    let format = formats.get(digits);
    if (!format) {
      format = new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
      formats.set(digits, format);
    }
    return format.format(value);
  }

  function signed(value, digits = 2, suffix = "") {
    if (value === null || value === undefined) return "—";
    return (value > 0 ? "+" : "") + fmt(value, digits) + suffix;
  }

  // "2013-10-07T13:31:00.5Z" -> "2013-10-07 13:31:00.5" (UTC, as the API gives it)
  function time(iso) {
    return iso ? iso.replace("T", " ").replace("Z", "") : "";
  }

  // The same time for a Plotly date axis: the wall time in time zone ``tz`` (default UTC),
  // at most microseconds. Plotly draws such text as it is (a Date object would be drawn in
  // the browser's time zone, and a date axis knows no other).
  function plotTime(iso, tz) {
    const utc = iso.replace("T", " ").replace("Z", "").replace(/(\.\d{6})\d+$/, "$1");
    if (!tz || tz === "UTC") return utc;
    const ms = Date.parse(utc.slice(0, 19).replace(" ", "T") + "Z");
    return new Date(ms + offsetMs(ms, tz)).toISOString().slice(0, 19).replace("T", " ") + utc.slice(19);
  }

  // Milliseconds since the epoch of a wall time in ``tz`` as a Plotly axis gives it back
  // ("2019-05-01 12:00:00.5" or "2019-05-01"; around a clock change, either of the two).
  function fromPlotTime(text, tz) {
    const wall = Date.parse(String(text).trim().replace(" ", "T") + (String(text).length > 10 ? "Z" : "T00:00:00Z"));
    if (!tz || tz === "UTC") return wall;
    return wall - offsetMs(wall - offsetMs(wall, tz), tz);
  }

  // A zone's offset from UTC at an instant (ms), read once per zone and UTC hour: zones
  // change their offsets on whole hours or half hours, never within one of those.
  const zoneFormats = new Map(), offsets = new Map();
  function offsetMs(ms, tz) {
    const key = tz + Math.floor(ms / 1800000);
    let offset = offsets.get(key);
    if (offset === undefined) {
      let format = zoneFormats.get(tz);
      if (!format) {
        format = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric",
          month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
        zoneFormats.set(tz, format);
      }
      const at = Math.floor(ms / 1000) * 1000;
      const p = Object.fromEntries(format.formatToParts(new Date(at)).map((x) => [x.type, x.value]));
      offset = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - at;
      if (offsets.size > 100000) offsets.clear();
      offsets.set(key, offset);
    }
    return offset;
  }

  // Milliseconds since the epoch, to order times (texts of differing precision do not sort).
  function ms(iso) {
    return Date.parse(iso);
  }

  // The dataset selector in the navigation bar. The dataset is the page's ?dataset=, else the
  // server's default; onChange(name) is called when the user picks another. Resolves to the
  // dataset shown (null: the lake has none yet; call again later to list them again).
  async function datasets(onChange) {
    const info = await getJSON("/api/datasets");
    document.body.dataset.exchangeZone = info.time_zone || "UTC";  // the symbol page's default
    let select = document.getElementById("dataset");
    if (!select) {
      select = document.createElement("select");
      select.id = "dataset";
      select.setAttribute("aria-label", "Dataset");
      select.addEventListener("change", () => {
        const query = new URLSearchParams(location.search);
        query.set("dataset", select.value);
        history.replaceState(null, "", "?" + query);
        document.body.dataset.dataset = select.value;
        onChange(select.value);
      });
      const label = document.createElement("label");
      label.className = "dataset";
      label.append("dataset ", select);
      document.querySelector("nav").insertBefore(label, document.getElementById("status"));
    }
    const names = info.datasets.map((d) => d.dataset);
    if (info.default && !names.includes(info.default)) names.push(info.default);
    select.replaceChildren(...names.map((name) => new Option(name, name)));
    const asked = new URLSearchParams(location.search).get("dataset");
    const chosen = asked && names.includes(asked) ? asked : info.default;
    select.value = chosen || "";
    document.body.dataset.dataset = chosen || "";
    return chosen || null;
  }

  // What the live pages show, by the source the server names in its figures: the badge
  // says so, so that a stored dataset is never taken for a market moving now.
  const SOURCES = {
    pipeline: ["live pipeline", "Streaming from the pipeline running in this process"],
    topics: ["Kafka topics", "Following a pipeline's output topics on Kafka"],
    lake: ["stored dataset", "Read from the lake's files: nothing is streaming; the pages show what was stored"],
  };

  // Connects to /ws and calls onMessage with each message; reconnects after a drop.
  // onOpen(socket), if given, is called on each (re)connection, e.g. to subscribe.
  function live(onMessage, onOpen) {
    const status = document.getElementById("status");
    let messages = 0;
    function open() {
      const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
      ws.onopen = () => {
        status.textContent = "connected";
        status.className = "status";
        if (onOpen) onOpen(ws);
      };
      ws.onmessage = (event) => {
        messages += 1;
        document.body.dataset.messages = messages;
        const message = JSON.parse(event.data);
        if (message.dataset) {
          const kind = (message.figures && message.figures.source) || "pipeline";
          const [text, title] = SOURCES[kind] || SOURCES.pipeline;
          status.textContent = text + ": " + message.dataset;
          status.title = title;
          status.className = "status source-" + kind;
          document.body.dataset.liveDataset = message.dataset;
          document.body.dataset.source = kind;
        }
        onMessage(message);
        // acknowledged once this page is free again: the server sends the next update
        // only then, so a busy page gets fewer, fresher updates instead of a backlog
        setTimeout(() => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ ack: message.n })); }, 0);
      };
      ws.onclose = () => {
        status.textContent = "disconnected, retrying";
        status.className = "status down";
        setTimeout(open, 1000);
      };
    }
    open();
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(url + ": " + response.status + " " + (await response.text()));
    return response.json();
  }

  return { nav, fmt, signed, time, plotTime, fromPlotTime, ms, datasets, live, getJSON };
})();
