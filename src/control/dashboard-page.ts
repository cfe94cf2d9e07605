// The dashboard: one small read-only page served by the control API, no build chain. It polls the
// same JSON routes the CLI uses (with its session, control/sessions.ts) and draws one agent's
// timeline as SVG.
// Every value from the daemon goes into the page as text (textContent), never as markup.

/** How often the page asks the daemon again. */
export const DASHBOARD_POLL_MS = 2000;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>igord</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d232a; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; } h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
  #node { color: #555; margin-bottom: .8rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #e3e3e3; font-variant-numeric: tabular-nums; }
  th { background: #f0f2f4; font-weight: 600; }
  tr.agent { cursor: pointer; } tr.agent:hover { background: #eef5ff; } tr.selected { background: #dcebff; }
  .failed, .quarantined, .load_failed { color: #b00020; } .retired { color: #777; } .running { color: #0a6b2b; }
  svg { background: #fff; border: 1px solid #e3e3e3; width: 100%; height: 260px; }
  .legend span { margin-right: 1rem; } .muted { color: #777; }
</style>
</head>
<body>
<h1>igord</h1>
<div id="node">connecting…</div>
<h2>Agents</h2>
<table id="agents"><thead><tr><th>agent</th><th>status</th><th>tick</th><th>budget</th><th>lease</th><th>divergences</th><th>reason</th></tr></thead><tbody></tbody></table>
<h2>Timeline <span id="timeline-agent" class="muted">(click an agent)</span></h2>
<div class="legend muted"><span>● checkpoint (tick over time)</span><span>▲ receipt</span><span>| migration</span><span>✕ divergence</span><span>◆ lineage record</span></div>
<svg id="timeline" viewBox="0 0 1000 260" preserveAspectRatio="none"></svg>
<h2>Peers</h2>
<table id="peers"><thead><tr><th>peer</th><th>price µ¢/s</th><th>capabilities</th><th>rtt ms</th><th>failures</th><th>last seen</th></tr></thead><tbody></tbody></table>
<h2>Migrations</h2>
<table id="migrations"><thead><tr><th>id</th><th>agent</th><th>direction</th><th>state</th><th>peer</th><th>attempts</th><th>error</th><th>updated</th></tr></thead><tbody></tbody></table>
<script src="/dashboard.js"></script>
</body>
</html>
`;

export const DASHBOARD_JS = `"use strict";
const POLL_MS = ${DASHBOARD_POLL_MS};
let selected = null;

// The session a login link gave this page (in a meta tag of /login's answer): kept in this origin's
// storage (this daemon's port alone), the used link's address replaced by the page's own.
const SESSION_KEY = "igord-session";
const fromLogin = document.querySelector('meta[name="igord-session"]');
if (fromLogin) {
  localStorage.setItem(SESSION_KEY, fromLogin.content);
  const opens = document.querySelector('meta[name="igord-agent"]').content;
  history.replaceState(null, "", "/" + (opens ? "#agent=" + opens : ""));
}
const session = localStorage.getItem(SESSION_KEY);

async function get(path) {
  if (!session) throw new Error("Not logged in: run igord dashboard on the node and open the link it prints");
  const r = await fetch(path, { headers: { authorization: "Session " + session }, credentials: "omit" });
  if (r.status === 401) throw new Error("session expired: run igord dashboard again");
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function text(v) {
  return v === null || v === undefined || v === "" ? "-" : String(v);
}

function fill(tbody, rows, onRow) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    const td = document.createElement("td");
    td.colSpan = tbody.parentElement.querySelectorAll("th").length;
    td.className = "muted";
    td.textContent = "none";
    tbody.appendChild(document.createElement("tr")).appendChild(td);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    for (const cell of row.cells) {
      const td = document.createElement("td");
      td.textContent = text(cell);
      tr.appendChild(td);
    }
    if (row.className) tr.className = row.className;
    if (onRow) onRow(tr, row);
    tbody.appendChild(tr);
  }
}

function lease(a) {
  return a.lease && typeof a.lease === "object" ? a.lease.state + " " + a.lease.epoch : a.status === "retired" ? "RETIRED " + text(a.epoch) : "-";
}

function reason(a) {
  if (a.status === "retired") return "migrated to " + text(a.target) + (a.since ? " at " + a.since : "");
  if (a.status === "load_failed") return text(a.path) + ": " + text(a.error && a.error.message);
  return a.reason || (a.error && a.error.code) || "";
}

async function refresh() {
  try {
    const [status, agents, peers, migrations] = await Promise.all([get("/v1/status"), get("/v1/agents?all=1"), get("/v1/peers"), get("/v1/migrations")]);
    document.getElementById("node").textContent =
      "node " + status.nodeId + " · igord " + status.version + " · up " + status.uptimeSeconds + " s · " +
      Object.entries(status.agents).map(([k, v]) => v + " " + k).join(", ");
    fill(
      document.querySelector("#agents tbody"),
      agents.agents.map((a) => ({ id: a.id, className: "agent " + a.status + (a.id === selected ? " selected" : ""), cells: [a.id, a.status, a.tick, a.budget, lease(a), a.divergences, reason(a)] })),
      (tr, row) => {
        tr.dataset.agent = row.id;
        tr.addEventListener("click", () => select(row.id));
      },
    );
    fill(document.querySelector("#peers tbody"), peers.peers.map((p) => ({ cells: [p.id, p.price, (p.capabilities || []).join(","), p.rttMs === null ? null : p.rttMs.toFixed(1), p.failures, p.lastSeen] })));
    fill(document.querySelector("#migrations tbody"), migrations.migrations.map((m) => ({ cells: [m.id, m.agentId, m.direction, m.state, m.peer, m.attempts, m.error && m.error.code, m.updatedAt] })));
  } catch (e) {
    document.getElementById("node").textContent = String(e.message || e);
    return;
  }
  // The selected agent's timeline fails on its own (an agent whose file failed to load has none):
  // said next to its name, the node's line kept.
  if (selected) await drawSelected(selected);
}

/** The agent's timeline, or why there is none next to its name. */
function drawSelected(id) {
  return drawTimeline(id).catch((e) => (document.getElementById("timeline-agent").textContent = id + ": " + e.message));
}

function select(id) {
  selected = id;
  document.getElementById("timeline-agent").textContent = id;
  for (const tr of document.querySelectorAll("#agents tr.agent")) tr.classList.toggle("selected", tr.dataset.agent === id);
  void drawSelected(id);
}

function svg(name, attrs, title) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (title) {
    const t = document.createElementNS("http://www.w3.org/2000/svg", "title");
    t.textContent = title;
    el.appendChild(t);
  }
  return el;
}

async function drawTimeline(id) {
  const t = await get("/v1/agents/" + encodeURIComponent(id) + "/timeline");
  const chart = document.getElementById("timeline");
  chart.replaceChildren();
  const times = [...t.checkpoints.map((c) => c.at), ...t.migrations.map((m) => m.at), ...t.divergences.map((d) => d.at), ...t.receipts.map((r) => r.at)].filter((x) => x);
  const ticks = t.checkpoints.map((c) => Number(c.tick));
  if (times.length === 0) return;
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
  const k1 = Math.max(1, ...ticks);
  const x = (at) => 20 + ((at - t0) / (t1 - t0)) * 960;
  const y = (tick) => 240 - (Number(tick) / k1) * 220;
  for (const m of t.migrations) chart.appendChild(svg("line", { x1: x(m.at), x2: x(m.at), y1: 10, y2: 250, stroke: "#7a4dd8", "stroke-width": 2, class: "migration" }, m.direction + " " + m.state + " " + (m.peer || "")));
  for (const c of t.checkpoints) chart.appendChild(svg("circle", { cx: x(c.at), cy: y(c.tick), r: 3, fill: "#1f6feb", class: "checkpoint" }, "tick " + c.tick + " · " + c.reason + " · budget " + c.budget));
  for (const r of t.receipts) chart.appendChild(svg("path", { d: "M" + x(r.at) + " 252 l-4 6 h8 z", fill: "#0a6b2b", class: "receipt" }, "receipt ticks " + r.tickStart + ".." + r.tickEnd + " cost " + r.cost));
  for (const p of t.payments) chart.appendChild(svg("path", { d: "M" + x(p.at || t1) + " 244 l-4 -6 h8 z", fill: "#8a6d00", class: "payment" }, "payment at tick " + p.tick + ": " + p.amount + " µ¢ to " + p.recipient + (p.memo ? " (" + p.memo + ")" : "")));
  for (const l of t.lineage) chart.appendChild(svg("rect", { x: x(l.at || t1) - 3, y: 4, width: 6, height: 6, fill: "#b26b00", class: "lineage" }, l.kind + " at tick " + l.tick + ": " + l.reason));
  for (const d of t.divergences) chart.appendChild(svg("text", { x: x(d.at), y: y(d.tick), fill: "#b00020", "text-anchor": "middle", class: "divergence" }, "divergence at tick " + d.tick + ": " + d.code));
  for (const d of chart.querySelectorAll("text.divergence")) d.insertBefore(document.createTextNode("✕"), d.firstChild);
}

// #agent=<id> opens the page on that agent's timeline (igord dashboard --agent).
const wanted = /^#agent=(.+)$/.exec(location.hash);
if (wanted) {
  // A malformed escape in the link is ignored (decodeURIComponent throws), not the page's end.
  let id = null;
  try {
    id = decodeURIComponent(wanted[1]);
  } catch {}
  if (id) select(id);
}
refresh();
setInterval(refresh, POLL_MS);
`;
