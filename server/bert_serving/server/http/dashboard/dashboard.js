// bert-as-service dashboard: polls the proxy's /status/server once a second and draws
// what it says. Self-contained on purpose: many deployments have no internet.
"use strict";

const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 3000;
const WINDOW_MS = 120 * 1000;
// A gap this long between samples means missed updates: the line is broken there.
const GAP_MS = 3.5 * POLL_MS;
const SVG_NS = "http://www.w3.org/2000/svg";

// Resolved from this script's own URL, so a proxy mounted under a path prefix still works.
const STATUS_URL = new URL("../status/server", document.currentScript.src).href;

// With -http_api_key the status endpoints want the key; the page takes it from
// /dashboard#key=KEY or from the form, and keeps it for this tab only.
const KEY_STORAGE = "bert-serving-dashboard-key";

// The fields of SHOW_STATUS that are not start arguments.
const NOT_ARGUMENTS = new Set([
  "server_version", "tensorflow_version", "python_version", "pyzmq_version", "zmq_version",
  "server_start_time", "server_current_time", "num_process", "ready", "model", "statistic",
  "client", "num_restarts", "workers", "num_workers_serving", "num_worker_losses",
  "num_worker_rejoins", "num_worker_refusals",
]);

const CHARTS = {
  requests: {
    series: [{ key: "requests", label: "requests/s", color: "#2563eb" }],
    format: formatRate,
  },
  texts: {
    series: [{ key: "texts", label: "texts/s", color: "#0d9488" }],
    format: formatRate,
  },
  latency: {
    series: [
      { key: "p50", label: "p50", color: "#7c3aed" },
      { key: "p95", label: "p95", color: "#db2777" },
    ],
    format: formatMs,
  },
  clients: {
    series: [{ key: "clients", label: "clients", color: "#ea580c" }],
    format: formatCount,
    integer: true,
  },
};

const state = {
  samples: [], // {t, requests, texts, p50, p95, clients}
  lastOk: null,
  failingSince: null,
  argumentsKey: null,
};

// ---------- formatting ----------

function formatCount(value) {
  return Math.round(value).toLocaleString("en-US");
}

function formatRate(value) {
  if (value >= 100) return formatCount(value);
  if (value >= 10) return value.toFixed(1);
  return value === 0 ? "0" : value.toFixed(2);
}

function formatMs(value) {
  if (value >= 100) return formatCount(value);
  return value === 0 ? "0" : value.toFixed(1);
}

function formatDuration(seconds) {
  const s = Math.floor(seconds);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  if (minutes > 0) return `${minutes}m ${s % 60}s`;
  return `${s}s`;
}

function formatValue(value) {
  if (value === null || value === undefined) return "None";
  if (Array.isArray(value) || typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function formatClock(date) {
  return date.toLocaleTimeString("en-GB", { hour12: false });
}

// ---------- DOM helpers ----------

function byId(id) {
  return document.getElementById(id);
}

function setText(id, text) {
  const element = byId(id);
  if (element.textContent !== text) element.textContent = text;
}

function fillFacts(id, facts) {
  const list = byId(id);
  const children = [];
  for (const [name, value] of facts) {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = value;
    children.push(term, detail);
  }
  list.replaceChildren(...children);
}

function svg(tag, attributes, text) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// ---------- rendering the status ----------

function renderHeader(status) {
  setText("server-version", String(status.server_version ?? "unknown"));
  const ready = byId("server-ready");
  ready.dataset.ready = String(Boolean(status.ready));
  ready.textContent = status.ready ? "ready" : "workers loading…";
}

function renderStats(status) {
  const stat = status.statistic || {};
  const latency = stat.latency_ms || {};
  setText("stat-requests", formatCount(stat.num_data_request || 0));
  setText("stat-requests-sub", `${formatCount(stat.num_sys_request || 0)} status/config requests`);
  setText("stat-texts", formatCount(stat.num_total_seq || 0));
  setText("stat-texts-sub",
    `${formatRate(stat.avg_size_per_request || 0)} per request on average`);
  setText("stat-errors", formatCount(stat.num_error_request || 0));
  byId("stat-errors").dataset.nonzero = String((stat.num_error_request || 0) > 0);
  setText("stat-errors-sub", `p95 latency ${formatMs(latency.p95 || 0)} ms`);
  setText("stat-clients", formatCount(stat.num_recent_client || 0));
  setText("stat-clients-sub", `${formatCount(stat.num_active_client || 0)} since start`);
  setText("stat-queue", formatCount(stat.num_queued_parts || 0));
  setText("stat-queue-sub", `parts queued, ${formatCount(stat.num_in_flight_parts || 0)} in flight`);
  setText("stat-uptime", formatDuration(stat.uptime_seconds || 0));
  setText("stat-uptime-sub", `since ${String(status.server_start_time || "").slice(0, 19)}`);
}

function renderServer(status) {
  const stat = status.statistic || {};
  fillFacts("server-facts", [
    ["Server", String(status.server_version ?? "–")],
    ["TensorFlow", String(status.tensorflow_version ?? "–")],
    ["Python", String(status.python_version ?? "–")],
    ["pyzmq / ZeroMQ", `${status.pyzmq_version ?? "–"} / ${status.zmq_version ?? "–"}`],
    ["Ports", `${status.port} in, ${status.port_out} out, HTTP ${status.http_port ?? "off"}`],
    ["Started", String(status.server_start_time || "–").slice(0, 19)],
    ["Uptime", formatDuration(stat.uptime_seconds || 0)],
  ]);
}

function renderModel(status) {
  const model = status.model || {};
  fillFacts("model-facts", [
    ["Folder", String(status.model_dir ?? "–")],
    ["Hidden size", formatValue(model.hidden_size)],
    ["Layers", formatValue(model.num_hidden_layers)],
    ["Max positions", formatValue(model.max_position_embeddings)],
    ["Vocabulary", model.vocab_size ? formatCount(model.vocab_size) : "–"],
    ["Pooler", model.has_pooler ? "yes" : "no"],
    ["Pooling", `${status.pooling_strategy} on layer ${formatValue(status.pooling_layer)}`],
    ["Max sequence length", formatValue(status.max_seq_len)],
  ]);
}

function renderDevices(status) {
  // every registered worker, local or on another host, as the front sees it
  const workers = Array.isArray(status.workers) ? status.workers : [];
  const items = workers.map((worker) => {
    const item = document.createElement("li");
    item.dataset.device = worker.device === "CPU" ? "-1" : worker.device;
    item.dataset.remote = String(Boolean(worker.remote));
    const where = worker.remote ? `remote ${worker.host}` : "local";
    item.textContent =
      `${worker.name} · ${worker.device} · ${where} · ${worker.parts_done} parts · ` +
      `heard ${formatValue(worker.last_heartbeat_s)} s ago`;
    return item;
  });
  byId("devices").replaceChildren(...items);
  const flags = ["xla", "fp16"].filter((flag) => status[flag]).join(", ") || "none";
  fillFacts("device-facts", [
    ["Workers serving", formatValue(status.num_workers_serving)],
    ["Lost / rejoined", `${formatValue(status.num_worker_losses)} / ${formatValue(status.num_worker_rejoins)}`],
    ["Local processes", formatValue(status.num_process)],
    ["Max batch size", formatValue(status.max_batch_size)],
    ["Options", flags],
  ]);
}

function renderArguments(status) {
  const entries = Object.entries(status).filter(([name]) => !NOT_ARGUMENTS.has(name));
  const key = JSON.stringify(entries);
  if (key === state.argumentsKey) return; // unchanged: keep the table (and any selection)
  state.argumentsKey = key;
  const items = entries.map(([name, value]) => {
    const item = document.createElement("div");
    item.className = "arg";
    item.dataset.argument = name;
    const nameCell = document.createElement("dt");
    nameCell.textContent = name;
    const valueCell = document.createElement("dd");
    valueCell.textContent = formatValue(value);
    item.append(nameCell, valueCell);
    return item;
  });
  byId("arguments").replaceChildren(...items);
}

function renderStatus(status) {
  renderHeader(status);
  renderStats(status);
  renderServer(status);
  renderModel(status);
  renderDevices(status);
  renderArguments(status);
}

// ---------- connection state ----------

function setConnection(ok, detail, keyNeeded = false) {
  const pill = byId("connection");
  const banner = byId("unreachable");
  document.body.dataset.state = ok ? "ok" : "unreachable";
  pill.dataset.state = ok ? "ok" : "unreachable";
  pill.textContent = ok ? "live" : keyNeeded ? "API key needed" : "server unreachable";
  banner.hidden = ok || keyNeeded; // the key form says what is wrong instead
  byId("key-form").hidden = !keyNeeded;
  if (!ok) {
    const since = state.failingSince ? ` since ${formatClock(state.failingSince)}` : "";
    setText("unreachable-detail", `${detail}${since}.`);
  }
}

// ---------- samples and charts ----------

function addSample(status, now) {
  const stat = status.statistic || {};
  const latency = stat.latency_ms || {};
  state.samples.push({
    t: now,
    requests: stat.recent_request_per_second || 0,
    texts: stat.recent_seq_per_second || 0,
    p50: latency.p50 || 0,
    p95: latency.p95 || 0,
    clients: stat.num_recent_client || 0,
  });
}

function pruneSamples(now) {
  // Keep one sample older than the window, so the line reaches the left edge.
  while (state.samples.length > 1 && state.samples[1].t < now - WINDOW_MS) {
    state.samples.shift();
  }
}

function niceStep(range, ticks) {
  const raw = range / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / magnitude;
  const nice = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10;
  return nice * magnitude;
}

function yStep(range, integer) {
  const step = niceStep(range, 4);
  return integer ? Math.max(1, step) : step;
}

function yScaleMax(maximum, integer) {
  if (maximum <= 0) return integer ? 4 : 1;
  const step = yStep(maximum, integer);
  const top = Math.ceil((maximum * 1.05) / step) * step;
  return integer ? Math.max(4, top) : top;
}

function yTicks(top, integer) {
  const step = yStep(top, integer);
  const ticks = [];
  for (let value = 0; value <= top + step / 1000; value += step) ticks.push(value);
  return ticks;
}

function linePath(points, x, y, key) {
  let path = "";
  let previous = null;
  for (const point of points) {
    const move = previous === null || point.t - previous.t > GAP_MS;
    path += `${move ? "M" : "L"}${x(point.t).toFixed(1)},${y(point[key]).toFixed(1)}`;
    previous = point;
  }
  return path;
}

function tickLabel(value, step) {
  // As many decimals as the step needs: 0, 0.5, 1 rather than 0.00, 0.50, 1.00.
  const decimals = step >= 1 ? 0 : Math.min(4, Math.ceil(-Math.log10(step) - 1e-9));
  return value.toLocaleString("en-US", {
    minimumFractionDigits: decimals, maximumFractionDigits: decimals,
  });
}

function areaPath(points, geometry, key) {
  // One closed shape per unbroken run of samples, down to the x axis.
  let path = "";
  let run = [];
  const close = () => {
    if (run.length > 1) {
      const line = run.map((p) => `${geometry.x(p.t).toFixed(1)},${geometry.y(p[key]).toFixed(1)}`);
      const first = geometry.x(run[0].t).toFixed(1);
      const last = geometry.x(run[run.length - 1].t).toFixed(1);
      path += `M${first},${geometry.bottom}L${line.join("L")}L${last},${geometry.bottom}Z`;
    }
    run = [];
  };
  for (const point of points) {
    if (run.length && point.t - run[run.length - 1].t > GAP_MS) close();
    run.push(point);
  }
  close();
  return path;
}

function drawAxes(group, geometry, top, integer) {
  const { left, right, plotTop, bottom } = geometry;
  const ticks = yTicks(top, integer);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
  for (const value of ticks) {
    const yPos = geometry.y(value);
    group.append(svg("line", { class: "grid", x1: left, x2: right, y1: yPos, y2: yPos }));
    group.append(svg("text", { class: "tick y", x: left - 6, y: yPos + 4 }, tickLabel(value, step)));
  }
  for (let secondsAgo = 120; secondsAgo >= 0; secondsAgo -= 30) {
    const xPos = geometry.x(geometry.now - secondsAgo * 1000);
    group.append(svg("line", { class: "grid", x1: xPos, x2: xPos, y1: plotTop, y2: bottom }));
    const label = secondsAgo === 0 ? "now" : `−${secondsAgo}s`;
    group.append(svg("text", { class: "tick x", x: xPos, y: bottom + 16 }, label));
  }
  group.append(svg("line", { class: "axis", x1: left, x2: right, y1: bottom, y2: bottom }));
  group.append(svg("line", { class: "axis", x1: left, x2: left, y1: plotTop, y2: bottom }));
}

function renderLegend(figure, spec, points) {
  const latest = points.length ? points[points.length - 1] : null;
  const items = spec.series.map((series) => {
    const item = document.createElement("span");
    item.className = "legend-item";
    item.style.setProperty("--swatch", series.color);
    const value = latest ? spec.format(latest[series.key]) : "–";
    item.textContent = `${series.label} ${value}`;
    return item;
  });
  figure.querySelector(".legend").replaceChildren(...items);
}

function drawChart(figure, spec, now) {
  const points = state.samples.filter((point) => point.t >= now - WINDOW_MS - 2 * POLL_MS);
  const plot = figure.querySelector(".plot");
  const width = Math.max(plot.clientWidth, 240);
  const height = 180;
  const maximum = Math.max(0, ...points.flatMap((p) => spec.series.map((s) => p[s.key])));
  const top = yScaleMax(maximum, spec.integer);
  const geometry = { left: 46, right: width - 10, plotTop: 8, bottom: height - 24, now };
  geometry.x = (t) => geometry.left
    + ((t - (now - WINDOW_MS)) / WINDOW_MS) * (geometry.right - geometry.left);
  geometry.y = (v) => geometry.bottom - (v / top) * (geometry.bottom - geometry.plotTop);

  const chart = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": figure.querySelector(".title").textContent,
  });
  const clip = `clip-${figure.id}`;
  const defs = svg("defs", {});
  const clipPath = svg("clipPath", { id: clip });
  clipPath.append(svg("rect", {
    x: geometry.left, y: 0, width: geometry.right - geometry.left, height: geometry.bottom,
  }));
  defs.append(clipPath);
  chart.append(defs);
  drawAxes(chart, geometry, top, spec.integer);
  if (spec.series.length === 1 && points.length > 1) {
    chart.append(svg("path", {
      class: "area", fill: spec.series[0].color, "clip-path": `url(#${clip})`,
      d: areaPath(points, geometry, spec.series[0].key),
    }));
  }
  for (const series of spec.series) {
    const path = svg("path", {
      class: "line", d: linePath(points, geometry.x, geometry.y, series.key),
      stroke: series.color, "clip-path": `url(#${clip})`,
      "data-series": series.key,
      "data-max": String(Math.max(0, ...points.map((p) => p[series.key]))),
    });
    chart.append(path);
  }
  plot.replaceChildren(chart);

  const first = spec.series[0].key;
  figure.dataset.points = String(points.length);
  figure.dataset.latest = points.length ? String(points[points.length - 1][first]) : "0";
  figure.dataset.max = String(Math.max(0, ...points.map((p) => p[first])));
  renderLegend(figure, spec, points);
}

function drawCharts() {
  const now = Date.now();
  for (const [name, spec] of Object.entries(CHARTS)) {
    drawChart(byId(`chart-${name}`), spec, now);
  }
}

// ---------- the API key ----------

class KeyRequired extends Error {}

function keyFromHash() {
  const match = /(?:^#|&)key=([^&]*)/.exec(window.location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function apiKey() {
  const fromHash = keyFromHash();
  if (fromHash) sessionStorage.setItem(KEY_STORAGE, fromHash);
  return fromHash || sessionStorage.getItem(KEY_STORAGE) || "";
}

function setUpKeyForm() {
  byId("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, byId("key-input").value.trim());
    // Drop a stale #key=… so that it does not override the key just typed.
    if (keyFromHash() !== null) history.replaceState(null, "", window.location.pathname);
    byId("key-input").value = "";
  });
}

// ---------- polling ----------

async function fetchStatus() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  try {
    const response = await fetch(STATUS_URL, {
      cache: "no-store",
      headers,
      signal: controller.signal,
    });
    if (response.status === 401) {
      throw new KeyRequired(key ? "The API key was refused" : "An API key is required");
    }
    if (!response.ok) throw new Error(`the status endpoint answered HTTP ${response.status}`);
    return await response.json();
  } finally {
    clearTimeout(timer);
  }
}

function describeFailure(error) {
  if (error.name === "AbortError") return "The status endpoint did not answer within 3 s";
  if (error instanceof TypeError) return "Cannot connect to the dashboard's server";
  const message = error.message || String(error);
  return message.charAt(0).toUpperCase() + message.slice(1);
}

async function poll() {
  const now = Date.now();
  try {
    const status = await fetchStatus();
    state.lastOk = new Date();
    state.failingSince = null;
    addSample(status, now);
    renderStatus(status);
    setConnection(true);
    setText("last-update", formatClock(state.lastOk));
  } catch (error) {
    state.failingSince = state.failingSince || new Date();
    setConnection(false, describeFailure(error), error instanceof KeyRequired);
  }
  pruneSamples(now);
  drawCharts();
}

async function loop() {
  const started = Date.now();
  await poll();
  setTimeout(loop, Math.max(0, POLL_MS - (Date.now() - started)));
}

function start() {
  setText("status-url", new URL(STATUS_URL).pathname);
  setUpKeyForm();
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawCharts, 100);
  });
  loop();
}

start();
