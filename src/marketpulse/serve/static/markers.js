// Alert markers of the symbol page: one marker style (shape and colour) per rule, the same
// for a rule on every symbol of a dataset (styles are given in the order of the dataset's
// rule names), one trace per rule so that the chart's legend names each rule, and a rule's
// markers shown or hidden by a click on its legend entry.
"use strict";
const Markers = (() => {
  const STYLES = [
    ["triangle-down", "#e0a526"], ["triangle-up", "#2fbf71"], ["circle", "#4aa3ff"],
    ["square", "#e5534b"], ["diamond", "#b07cff"], ["star", "#ff9f43"], ["x", "#17becf"],
    ["cross", "#f0f0f0"], ["pentagon", "#e377c2"], ["hexagon", "#bcbd22"],
  ];
  const styles = new Map();  // rule -> [symbol, colour]
  const hidden = new Set();  // rules whose markers are hidden

  // Gives each of the dataset's rules its style, by name (a new dataset starts again).
  function setRules(names) {
    styles.clear();
    for (const name of [...names].sort()) styles.set(name, STYLES[styles.size % STYLES.length]);
  }

  function styleOf(rule) {
    if (!styles.has(rule)) styles.set(rule, STYLES[styles.size % STYLES.length]);
    return styles.get(rule);
  }

  // One trace per rule with alerts: x and y from ``where(alert)`` ([x, y]).
  function traces(alerts, where) {
    const byRule = new Map();
    for (const a of alerts) {
      if (!byRule.has(a.rule)) byRule.set(a.rule, []);
      byRule.get(a.rule).push(a);
    }
    return [...byRule.keys()].sort().map((rule) => {
      const list = byRule.get(rule);
      const points = list.map(where);
      const [symbol, color] = styleOf(rule);
      return {
        type: "scatter", mode: "markers", name: "alert " + rule + " (" + list.length + ")", meta: { rule },
        visible: hidden.has(rule) ? "legendonly" : true,
        x: points.map((p) => p[0]), y: points.map((p) => p[1]),
        text: list.map((a) => a.rule + ": " + a.message), hoverinfo: "text",
        marker: { symbol, size: 11, color, line: { color: "#0f1419", width: 1 } },
      };
    });
  }

  // Shows or hides a rule's markers; returns whether they are hidden now.
  function toggle(rule) {
    if (hidden.has(rule)) hidden.delete(rule);
    else hidden.add(rule);
    return hidden.has(rule);
  }

  return { setRules, traces, toggle, hidden };
})();
