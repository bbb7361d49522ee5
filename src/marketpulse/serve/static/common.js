// Shared by every page: navigation, number formats and the live WebSocket.
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

  function fmt(value, digits = 2) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function signed(value, digits = 2, suffix = "") {
    if (value === null || value === undefined) return "—";
    return (value > 0 ? "+" : "") + fmt(value, digits) + suffix;
  }

  function time(ns) {
    return new Date(ns / 1e6).toISOString().replace("T", " ").replace("Z", "");
  }

  // Connects to /ws and calls onMessage with each message; reconnects after a drop.
  // onOpen(socket), if given, is called on each (re)connection, e.g. to subscribe.
  function live(onMessage, onOpen) {
    const status = document.getElementById("status");
    let messages = 0;
    function open() {
      const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
      ws.onopen = () => {
        status.textContent = "live";
        status.className = "status live";
        if (onOpen) onOpen(ws);
      };
      ws.onmessage = (event) => {
        messages += 1;
        document.body.dataset.messages = messages;
        const message = JSON.parse(event.data);
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

  return { nav, fmt, signed, time, live, getJSON };
})();
