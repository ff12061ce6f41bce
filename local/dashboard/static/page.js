// The twin's live page: every snapshot the server streams (/events) re-renders the sections in place.
"use strict";

const COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2"];
let chart = null;
let chartKeys = "";
let lastAt = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const num = (value, digits = 0) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit",
                                                                             second: "2-digit", hour12: false });
const cell = (value, cls) => el("td", { class: cls || "num" }, value);

function fill(id, rows, columns, emptyText) {
  const body = document.getElementById(id);
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colspan: columns },
    emptyText))]));
}

function renderCanary(canary, error) {
  document.getElementById("canary-error").textContent = error || "";
  if (!canary) {
    document.getElementById("canary-vs").textContent = "";
    fill("canary-rows", [], 8, error ? "not readable now" : "no weighted VirtualService in the graph");
    return;
  }
  document.getElementById("canary-vs").textContent = `${canary.virtualService} → ${canary.host}`;
  const rows = canary.subsets.map((s, i) => {
    const success = s.successRate === null ? "–" : `${num(s.successRate, 1)} %`;
    const successClass = s.successRate === null ? "num" : s.successRate < 99 ? "num bad" : "num ok";
    const share = s.share === null ? "–" : `${num(s.share, 1)} %`;
    return el("tr", { "data-subset": s.subset, "data-weight": s.weight, "data-requests": s.requests,
                      "data-share": s.share === null ? "" : s.share },
      el("td", {}, el("span", { class: "swatch", style: `background:${COLORS[i % COLORS.length]}` }), s.subset),
      el("td", {}, (s.versions || []).join(", ") || "–"),
      el("td", { class: "num weight" }, el("span", { class: "bar" }, el("span", { style: `width:${s.weight}%` })),
        `${s.weight} %`),
      cell(share, "num share"), cell(s.requests, "num requests"), cell(success, successClass),
      cell(num(s.p50Ms, 1)), cell(num(s.p99Ms, 1)));
  });
  fill("canary-rows", rows, 8, "no subsets");
  renderChart(canary);
}

function renderChart(canary) {
  const keys = canary.subsets.map((s) => s.subset);
  const data = [canary.chart.t, ...keys.map((k) => canary.chart.series[k] || [])];
  const box = document.getElementById("chart");
  const width = Math.max(300, box.clientWidth);
  if (!chart || chartKeys !== keys.join("|")) {
    if (chart) chart.destroy();
    chartKeys = keys.join("|");
    chart = new uPlot({
      width, height: 220,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      legend: { live: false },
      axes: [{ space: 80, values: (u, splits) => splits.map(clock) }, { label: "requests / s", size: 60 }],
      series: [{}, ...keys.map((k, i) => ({ label: k, stroke: COLORS[i % COLORS.length], width: 2,
                                           fill: COLORS[i % COLORS.length] + "22" }))],
    }, data, box);
  } else {
    if (Math.abs(chart.width - width) > 4) chart.setSize({ width, height: 220 });
    chart.setData(data);
  }
}

function verdictClass(value) {
  if (value === "healthy" || value === "promote" || value === "complete") return "pill ok";
  if (value === "unhealthy" || value === "rollback" || value === "failed") return "pill bad";
  return "pill warn";
}

function renderRollout(rollout, error) {
  const box = document.getElementById("rollout-body");
  if (!rollout) {
    box.replaceChildren(el("p", { class: error ? "error" : "muted" }, error || "no rollout running"));
    return;
  }
  const steps = (rollout.steps || []).map((w) => el("span", {
    class: w === rollout.weight ? "pill warn" : "pill" }, `${w} %`));
  const head = el("p", {}, `state: `, el("span", { class: verdictClass(rollout.state) }, rollout.state || "running"),
    `  ·  current weight ${num(rollout.weight)} %  ·  steps `, ...steps);
  const decisions = (rollout.decisions || []).map((d) => el("tr", { "data-step": d.step },
    el("td", {}, `${num(d.previousWeight)} → ${num(d.step)} %`), cell(num(d.requests)), cell(num(d.errorPercent, 2)),
    cell(num(d.p99Ms, 1)),
    el("td", {}, d.verdict ? el("span", { class: verdictClass(d.verdict) }, d.verdict) : "–"),
    el("td", {}, el("span", { class: verdictClass(d.action) }, d.action || "–")),
    el("td", { class: "muted" }, d.reason || d.detail || "")));
  const table = el("table", {}, el("thead", {}, el("tr", {}, ...["step", "requests", "errors %", "p99 ms", "verdict",
    "action", "reason"].map((h, i) => el("th", { class: i >= 1 && i <= 3 ? "num" : "" }, h)))),
  el("tbody", {}, ...decisions));
  box.replaceChildren(head, table);
}

// The stack's naming prefix (`serverless-mesh-dev-`) is the same on every function: shown once, in the heading.
function commonPrefix(names) {
  if (names.length < 2) return "";
  let prefix = names[0];
  for (const name of names) while (!name.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix.slice(0, prefix.lastIndexOf("-") + 1);
}

function renderFunctions(functions, images, errors) {
  document.getElementById("functions-error").textContent = [errors.functions, errors.images].filter(Boolean)
    .join("; ");
  const names = (functions || []).map((f) => f.name);
  const prefix = commonPrefix(names);
  document.getElementById("functions-prefix").textContent = prefix ? `${prefix}…` : "";
  const rows = (functions || []).map((f) => el("tr", { "data-function": f.name, "data-invocations": f.invocations,
                                                      "data-errors": f.errors, "data-workers": f.workers,
                                                      "data-p50": f.p50Ms ?? "", "data-p99": f.p99Ms ?? "" },
    el("td", { title: f.name }, f.name.slice(prefix.length)), cell(f.invocations), cell(f.errors, f.errors ? "num bad" : "num"),
    cell(num(f.p50Ms, 1)), cell(num(f.p99Ms, 1)), cell(f.workers)));
  fill("function-rows", rows, 6, "no functions");
  const box = document.getElementById("images");
  if (!images) {
    box.replaceChildren(el("p", { class: "muted" }, "no bucket notifications in the graph"));
    return;
  }
  const tile = (label, value, cls, attrs) => el("div", { class: "tile", ...attrs },
    el("div", { class: `value ${cls || ""}` }, value), el("div", { class: "label" }, label));
  box.replaceChildren(
    tile("processed", images.processed, "ok", { "data-processed": images.processed }),
    tile("failed", images.failed, images.failed ? "bad" : "", { "data-failed": images.failed }),
    ...images.queues.map((q) => tile(`queue ${q.queue}`, q.depth, q.depth ? "warn" : "",
                                     { "data-queue": q.queue, "data-depth": q.depth })));
}

function renderShop(stock, breakers, errors) {
  document.getElementById("shop-error").textContent = [errors.stock, errors.breakers].filter(Boolean).join("; ");
  const stockRows = (stock || []).map((p) => el("tr", { "data-product": p.productId, "data-stock": p.stock },
    el("td", {}, p.productId), cell(num(p.stock), p.stock <= 5 ? "num warn" : "num")));
  fill("stock-rows", stockRows, 2, stock === null ? "no inventory service" : "no products");
  const breakerRows = (breakers || []).map((b) => {
    const open = b.open.length ? el("span", { class: "pill bad" }, `open: ${b.open.join(", ")}`)
      : el("span", { class: "pill ok" }, "closed");
    const name = `${b.host.split(".")[0]}${b.subset ? ` (${b.subset})` : ""}`;
    return el("tr", { "data-cluster": b.cluster, "data-ejected": b.ejected, "data-open": b.open.join(" ") },
      el("td", { title: b.cluster }, name), cell(`${b.healthy}/${b.total}`, b.healthy < b.total ? "num warn" : "num"),
      cell(b.ejected, b.ejected ? "num bad" : "num"), el("td", {}, open), cell(b.overflows));
  });
  fill("breaker-rows", breakerRows, 5, breakers === null ? "no mesh" : "no clusters");
}

// One waterfall per order: a row per span, indented under its parent, its bar placed by start offset and duration.
function renderTraces(traces, error) {
  document.getElementById("traces-error").textContent = error || "";
  const box = document.getElementById("trace-list");
  if (!traces || !traces.length) {
    box.replaceChildren(el("p", { class: "muted" }, traces === null ? "no trace collector" : "no order traced yet"));
    return;
  }
  box.replaceChildren(...traces.map((t) => {
    const total = Math.max(t.durationMs, 0.001);
    const rows = t.rows.map((r) => el("div", { class: `span-row${r.error ? " bad" : ""}`, "data-span": r.spanId,
                                              "data-parent": r.parentId || "", "data-service": r.service,
                                              "data-depth": r.depth },
      el("span", { class: "span-name", style: `padding-left:${r.depth * 14}px`, title: r.name }, r.name),
      el("span", { class: "span-service muted", title: r.service }, r.service),
      el("span", { class: "span-track" }, el("span", { class: "span-bar", style:
        `left:${(100 * r.offsetMs) / total}%;width:${Math.max(0.4, (100 * r.durationMs) / total)}%` })),
      el("span", { class: "num span-ms" }, `${num(r.offsetMs, 1)} + ${num(r.durationMs, 1)} ms`)));
    return el("div", { class: "trace", "data-trace-id": t.traceId, "data-order-id": t.orderId || "",
                       "data-spans": t.spans },
      el("p", { class: "trace-head" }, el("strong", {}, t.name), ` · order ${t.orderId || "–"} · ${t.spans} spans · `,
        `${num(t.durationMs, 1)} ms · `, el("span", { class: "muted" }, `trace ${t.traceId}`)), ...rows);
  }));
}

function render(snapshot) {
  const errors = snapshot.errors || {};
  renderCanary(snapshot.canary, errors.canary);
  renderRollout(snapshot.rollout, errors.rollout);
  renderFunctions(snapshot.functions, snapshot.images, errors);
  renderShop(snapshot.stock, snapshot.breakers, errors);
  renderTraces(snapshot.traces, errors.traces);
  document.body.dataset.seq = snapshot.seq;
  lastAt = Date.now();
  document.getElementById("updated").textContent =
    `stack ${snapshot.stack} · ${new Date(snapshot.at * 1000).toLocaleTimeString()}`;
  document.getElementById("dot").className = "dot on";
}

// A stream that goes quiet (the twin stopped, the page restarted) shows as such; EventSource reconnects itself.
setInterval(() => {
  if (lastAt && Date.now() - lastAt > 3000) document.getElementById("dot").className = "dot off";
}, 1000);

const source = new EventSource("/events");
source.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
source.onerror = () => { document.getElementById("dot").className = "dot off"; };
