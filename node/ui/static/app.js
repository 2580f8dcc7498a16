// Roost dashboard: polls the node's JSON API every second and draws the
// members, their partitions, ops/s over time and replication lag. No
// dependencies, nothing fetched from the internet.
"use strict";
(() => {
  const POLL_MS = 1000;          // how often the API is polled
  const HISTORY = 120;           // chart samples kept (two minutes at 1/s)
  const TOKEN_KEY = "roost.token";
  const COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#4a5568"];

  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let waitingForToken = false;
  let prev = null;               // last sample: {time (ms), ops: {name: total}}
  const history = [];            // [{time, total, nodes: {name: ops/s}}]
  const colorOf = {};            // node name -> chart colour

  const $ = (id) => document.getElementById(id);

  class TokenError extends Error {}

  async function api(path) {
    const headers = {};
    if (token) headers["X-Consul-Token"] = token;
    const resp = await fetch(path, { headers, cache: "no-store" });
    if (resp.status === 403) throw new TokenError("token required");
    if (!resp.ok) throw new Error(`${path}: ${resp.status} ${(await resp.text()).trim()}`);
    return resp.json();
  }

  // The token form: shown once when the node answers 403.
  function askToken(wrong) {
    waitingForToken = true;
    $("token-form").hidden = false;
    $("token-error").textContent = wrong ? "wrong token" : "";
    $("token").focus();
  }
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token-form").hidden = true;
    waitingForToken = false;
    poll();
  });

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "style") Object.assign(e.style, v); // CSSOM, which the page's CSP allows (style attributes it does not)
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function fmtBytes(n) {
    if (!n) return "0 B";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${u[i]}`;
  }
  const fmtNum = (n) => (n === undefined || n === null) ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 });
  const sumOps = (ops) => Object.values(ops || {}).reduce((a, b) => a + b, 0);

  // sample turns a stats answer into ops/s per node since the previous one.
  function sample(stats) {
    const time = Date.parse(stats.time);
    const ops = {};
    for (const s of stats.nodes) if (s.ops) ops[s.name] = sumOps(s.ops);
    const rates = {};
    if (prev && time > prev.time) {
      const dt = (time - prev.time) / 1000;
      for (const [name, total] of Object.entries(ops)) {
        const before = prev.ops[name];
        if (before !== undefined) rates[name] = total >= before ? (total - before) / dt : total / dt;
      }
      const total = Object.values(rates).reduce((a, b) => a + b, 0);
      history.push({ time, total, nodes: rates });
      while (history.length > HISTORY) history.shift();
    }
    prev = { time, ops };
    return rates;
  }

  function renderMembers(members, stats, rates) {
    const byName = {};
    for (const s of stats.nodes) byName[s.name] = s;
    const tbody = $("members").querySelector("tbody");
    const rows = [];
    const all = members.members.concat((members.refused || []).map((m) => ({ ...m, status: "refused", partitions: {} })));
    for (const m of all) {
      // Figures only for a member that gave them: a dead, left or silent
      // one shows "–", never a zero it did not measure.
      const s = (byName[m.name] && !byName[m.name].error) ? byName[m.name] : {};
      const tags = el("td");
      for (const [k, v] of Object.entries(m.tags || {}).sort()) tags.append(el("span", { class: "tag" }, `${k}=${v}`));
      const name = el("td", { class: m.self ? "self" : "" }, m.name);
      if (m.self) name.title = "the node serving this page";
      const lag = s.replication_lag_seconds;
      rows.push(el("tr", { "data-member": m.name, "data-status": m.status },
        name,
        el("td", {}, el("span", { class: `badge ${m.status}` }, m.status)),
        el("td", {}, m.role || ""),
        el("td", { class: "num" }, fmtNum(m.partitions && m.partitions.primary)),
        el("td", { class: "num" }, fmtNum(m.partitions && m.partitions.replica)),
        el("td", { class: "num" }, s.keys === undefined ? "–" : `${fmtNum(s.primary_keys)} / ${fmtNum(s.keys)}`),
        el("td", { class: "num" }, s.bytes === undefined ? "–" : fmtBytes(s.bytes)),
        el("td", { class: "num" }, rates[m.name] === undefined ? "–" : fmtNum(rates[m.name])),
        el("td", { class: "num" }, fmtNum(s.errors)),
        el("td", { class: "num" }, lag === undefined ? "–" : `${lag.toFixed(2)} s`),
        tags,
        el("td", { class: "addr" }, m.addr || ""),
        el("td", { class: "addr" }, m.http || ""),
      ));
    }
    tbody.replaceChildren(...rows);
  }

  function renderPartitions(members) {
    const servers = members.members.filter((m) => m.partitions && (m.partitions.primary || m.partitions.replica));
    const most = Math.max(1, ...servers.map((m) => m.partitions.primary + m.partitions.replica));
    const rows = servers.map((m) => {
      const p = m.partitions.primary, r = m.partitions.replica;
      const track = el("div", { class: "track" },
        el("div", { class: "p", style: { width: `${(100 * p) / most}%` }, title: `${p} primary` }),
        el("div", { class: "r", style: { width: `${(100 * r) / most}%` }, title: `${r} replica` }));
      return el("div", { class: "row", "data-partitions": m.name }, el("span", {}, m.name), track, el("span", { class: "num" }, `${p}/${r}`));
    });
    if (rows.length === 0) rows.push(el("div", {}, "no partitions held"));
    rows.push(el("div", { class: "legend" }, el("span", {}, el("i", { class: "p" }), "primary"),
      el("span", {}, el("i", { class: "r" }), "replica")));
    $("partitions").replaceChildren(...rows);
  }

  function renderChart() {
    const canvas = $("chart");
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 720, h = canvas.clientHeight || 240;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const pad = { l: 52, r: 10, t: 10, b: 22 };
    const step = niceStep(Math.max(1, ...history.map((s) => s.total)) / 4), max = 4 * step; // whole-number ticks
    const x = (i) => pad.l + ((w - pad.l - pad.r) * (HISTORY - history.length + i)) / (HISTORY - 1);
    const y = (v) => h - pad.b - ((h - pad.t - pad.b) * v) / max;
    ctx.strokeStyle = "#e2e4e8"; ctx.fillStyle = "#6a7380"; ctx.font = "11px system-ui, sans-serif"; ctx.lineWidth = 1;
    const ticks = [];
    for (let i = 0; i <= 4; i++) {
      const v = step * i;
      ticks.push(v);
      ctx.beginPath(); ctx.moveTo(pad.l, y(v)); ctx.lineTo(w - pad.r, y(v)); ctx.stroke();
      ctx.fillText(fmtNum(v), 4, y(v) + 4);
    }
    ctx.fillText(`-${HISTORY}s`, pad.l, h - 6);
    ctx.fillText("now", w - pad.r - 22, h - 6);
    const line = (values, color, width) => {
      ctx.strokeStyle = color; ctx.lineWidth = width; ctx.beginPath();
      values.forEach((v, i) => { if (i === 0) ctx.moveTo(x(i), y(v)); else ctx.lineTo(x(i), y(v)); });
      ctx.stroke();
    };
    const names = [...new Set(history.flatMap((s) => Object.keys(s.nodes)))].sort();
    const legend = [el("span", {}, el("i", { style: { background: "#1d232b" } }), "cluster")];
    names.forEach((name) => {
      colorOf[name] = colorOf[name] || COLORS[Object.keys(colorOf).length % COLORS.length];
      line(history.map((s) => s.nodes[name] || 0), colorOf[name], 1.5);
      legend.push(el("span", {}, el("i", { style: { background: colorOf[name] } }), name));
    });
    line(history.map((s) => s.total), "#1d232b", 2.5);
    $("legend").replaceChildren(...legend);
    canvas.dataset.samples = String(history.length);
    canvas.dataset.ticks = ticks.join(",");
  }

  // niceStep is the smallest of 1, 2 or 5 times a power of ten, and at
  // least 1, that is v or more: the chart's four ticks are whole numbers.
  function niceStep(v) {
    const p = Math.pow(10, Math.floor(Math.log10(Math.max(v, 1))));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function render(members, stats, status) {
    const rates = sample(stats);
    renderMembers(members, stats, rates);
    renderPartitions(members);
    renderChart();
    const alive = members.members.filter((m) => m.status === "alive").length;
    $("card-alive").textContent = `${alive} / ${members.members.length}`;
    const last = history[history.length - 1];
    $("card-ops").textContent = last ? fmtNum(last.total) : "–";
    // Each key is stored by its primary and its replicas: the distinct keys
    // are what the primaries hold, the stored entries count every copy.
    const live = stats.nodes.filter((s) => !s.error);
    $("card-keys").textContent = fmtNum(live.reduce((a, s) => a + (s.primary_keys || 0), 0));
    $("card-copies").textContent = `${fmtNum(live.reduce((a, s) => a + (s.keys || 0), 0))} stored with copies`;
    const lags = live.map((s) => s.replication_lag_seconds).filter((v) => v !== undefined);
    $("card-lag").textContent = lags.length ? `${Math.max(...lags).toFixed(2)} s` : "–";
    const copies = status.cluster && status.cluster.replicas !== undefined ? status.cluster.replicas : status.replicas;
    const owners = copies === 1 ? "1 copy of each key" : `${copies} copies of each key`;
    const capped = copies < status.replicas ? ` (--replicas ${status.replicas}, capped at the servers)` : "";
    // --placement-tag: owners spread over zones, or a warning naming the
    // partitions that could not be spread.
    const pl = status.cluster && status.cluster.placement;
    const zoneCount = pl ? Object.keys(pl.zones).length : 0;
    const spread = !pl ? "" : pl.spread ? ` · spread by ${pl.tag} over ${zoneCount} zones` : ` · NOT spread by ${pl.tag} (${zoneCount} live)`;
    $("placement").hidden = !pl || pl.spread;
    if (pl && !pl.spread) {
      const list = pl.unspread.length > 20 ? `${pl.unspread.slice(0, 20).join(", ")}, …` : pl.unspread.join(", ");
      $("placement").textContent = `${pl.unspread.length} partitions could not be spread over distinct ${pl.tag} values (${zoneCount} live, ${copies} copies each): losing one ${pl.tag} may lose them. Partitions ${list}.`;
    }
    $("summary").textContent = `node ${status.name} · Roost ${status.version} · ${status.partitions} partitions · ${owners}${capped}${spread} · view ${members.version}`;
    $("updated").textContent = `updated ${new Date(stats.time).toLocaleTimeString()}`;
    $("footer").textContent = `Polling ${location.host} every ${POLL_MS / 1000} s. Ops/s count the operations each node executed as a partition's primary. Keys: distinct keys (what the primaries hold) / entries stored, replica copies included. Replication lag: how long after their primary a node's replicas applied the entries they received (99th percentile). "–": no figure, the member is not live or did not answer.`;
  }

  let inFlight = false;
  async function poll() {
    if (inFlight || waitingForToken) return;
    inFlight = true;
    try {
      const [members, stats, status] = await Promise.all([api("../v1/roost/members"), api("../v1/roost/stats"), api("../v1/status")]);
      $("error").hidden = true;
      render(members, stats, status);
    } catch (err) {
      if (err instanceof TokenError) {
        askToken(token !== "");
      } else {
        $("error").hidden = false;
        $("error").textContent = `cannot reach the node: ${err.message}`;
      }
    } finally {
      inFlight = false;
    }
  }

  poll();
  setInterval(poll, POLL_MS);
})();
