// The dashboard page's script: polls dashboard/data every 2 s (paused while the tab is hidden or the operator
// presses "Pause updates") and renders it with DOM APIs only (textContent, never innerHTML), charts as SVG paths.
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

let paused = false;
let timer;
let lastOk = 0;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child ?? "");
  return node;
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1000) return `${Math.round(value)} ms`;
  return `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`;
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s} s`;
  return `${s} s`;
}

const clock = (epochMs) => new Date(epochMs).toLocaleTimeString([], { hour12: false });

/** Wei (decimal string) as ether with 4 decimals, exact (BigInt). */
function ether(wei) {
  if (wei === null || wei === undefined) return "–";
  const value = BigInt(wei);
  const unit = 10n ** 18n;
  const frac = ((value % unit) * 10000n) / unit;
  return `${value / unit}.${frac.toString().padStart(4, "0")} ETH`;
}

function facts(list, pairs) {
  list.replaceChildren(
    ...pairs.flatMap(([label, value, cls]) => [
      el("dt", {}, label),
      el("dd", cls ? { class: cls } : {}, value),
    ]),
  );
}

function rows(table, items, cells) {
  const labels = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  table.tBodies[0].replaceChildren(
    ...items.map((item) =>
      el(
        "tr",
        {},
        ...cells(item).map(([value, cls], i) =>
          el("td", { "data-label": labels[i] ?? "", class: cls ?? "" }, value),
        ),
      ),
    ),
  );
}

/** Bars (one path per series, stacked) of equal-width buckets; returns the largest stacked value. */
function bars(svg, series, classes) {
  const n = series[0].length;
  const totals = Array.from({ length: n }, (_, i) => series.reduce((sum, s) => sum + s[i], 0));
  const max = Math.max(1, ...totals);
  const base = new Array(n).fill(0);
  series.forEach((values, k) => {
    let d = "";
    values.forEach((v, i) => {
      if (v <= 0) return;
      const h = (v / max) * 96;
      const y = 99 - (base[i] / max) * 96 - h;
      d += `M${i} ${y.toFixed(2)}h1v${h.toFixed(2)}h-1z`;
      base[i] += v;
    });
    svg.querySelector(`.${classes[k]}`).setAttribute("d", d);
  });
  return Math.max(...totals, 0);
}

/** Step lines of equal-width buckets, one path per series; returns the largest value. */
function lines(svg, series, classes) {
  const max = Math.max(1, ...series.flat());
  series.forEach((values, k) => {
    const d = values
      .map((v, i) => `${i === 0 ? "M" : "L"}${i} ${(99 - (v / max) * 96).toFixed(2)}h1`)
      .join("");
    svg.querySelector(`.${classes[k]}`).setAttribute("d", d);
  });
  return Math.max(...series.flat(), 0);
}

function renderNode(data) {
  const { node } = data;
  $("version").textContent = `v${node.version}`;
  facts($("node-list"), [
    ["Version", `${node.version} (compatible with ${node.compat_version})`],
    ["Uptime", duration(node.uptime_s)],
    ["Store", node.store],
    ["Containers", node.manage_containers ? "managed (Docker)" : "remote"],
    ["Chain", node.chain_enabled ? `on, chain id ${node.chain_id ?? "…"}` : "off"],
    ...(node.address ? [["Address", node.address, "mono"]] : []),
  ]);
  $("warnings").replaceChildren(...node.warnings.map((w) => el("li", {}, `config: ${w}`)));
}

function renderHealth(data) {
  const healthy = data.health.status === "healthy";
  const badge = $("health-badge");
  badge.textContent = healthy ? "healthy" : "unhealthy";
  badge.className = `badge ${healthy ? "good" : "bad"}`;
  const ready = $("ready-badge");
  ready.textContent = data.readiness.ready ? "ready" : "not ready";
  ready.className = `badge ${data.readiness.ready ? "good" : "warn"}`;
  $("health-checks").replaceChildren(
    ...data.health.checks.map((check) =>
      el(
        "li",
        {},
        el("span", { class: check.ok ? "good" : "bad" }, check.ok ? "✓ " : "✗ "),
        el("strong", {}, check.name),
        check.detail ? ` ${check.detail}` : "",
      ),
    ),
  );
  $("ready-reasons").replaceChildren(...data.readiness.reasons.map((r) => el("li", {}, r)));
}

const STATE_CLASS = {
  ready: "good",
  remote: "good",
  starting: "warn",
  unhealthy: "bad",
  stopped: "bad",
  missing: "bad",
};

function renderContainers(data) {
  rows($("containers-table"), data.containers, (c) => [
    [el("strong", {}, c.id)],
    c.state === "remote"
      ? [c.ready ? "remote, up" : "remote, down", c.ready ? "good nowrap" : "bad nowrap"]
      : [c.state, `${STATE_CLASS[c.state] ?? ""} nowrap`],
    [String(c.restarts), "num"],
    [String(c.succeeded), "num"],
    [String(c.failed), "num"],
    [ms(c.p50_ms), "num"],
    [ms(c.p99_ms), "num"],
    [c.last_error ? `${c.last_error_at ? `${clock(c.last_error_at)} ` : ""}${c.last_error}` : "–"],
  ]);
}

function renderJobs(data) {
  const { jobs } = data;
  const ok = jobs.totals.offchain.success + jobs.totals.onchain.success;
  const failed = jobs.totals.offchain.failed + jobs.totals.onchain.failed;
  facts($("job-totals"), [
    ["Running", `${jobs.pending.offchain} off-chain, ${jobs.pending.onchain} on-chain`],
    ["Succeeded", String(ok), "good"],
    ["Failed", String(failed), failed > 0 ? "bad" : ""],
  ]);
  const chart = $("jobs-chart");
  const max = bars(chart, [jobs.rate.succeeded, jobs.rate.failed], ["bar-ok", "bar-failed"]);
  const total = jobs.rate.succeeded.reduce((a, b) => a + b, 0) + jobs.rate.failed.reduce((a, b) => a + b, 0);
  chart.dataset.total = String(total);
  chart.setAttribute("aria-label", `${total} jobs in the last hour, at most ${max} per 10 seconds`);
  $("jobs-chart-max").textContent = `max ${max} per 10 s`;
  rows($("jobs-table"), jobs.latest.slice(0, 20), (job) => [
    [el("code", {}, job.id || "–")],
    [job.containers.join(" → ")],
    [job.status, job.status === "success" ? "good nowrap" : "bad nowrap"],
    [ms(job.duration_ms), "num"],
    [clock(job.at), "nowrap"],
  ]);
  $("jobs-empty").hidden = jobs.latest.length > 0;
}

function renderChain(data) {
  const { chain } = data;
  $("chain").hidden = chain === null;
  $("chain-link").hidden = chain === null;
  if (chain === null) return;
  const d = chain.deliveries;
  facts($("chain-list"), [
    ["Status", chain.status ?? "–"],
    ["Head block", chain.head_block ?? "–"],
    ["Synced block", chain.synced_block ?? "–"],
    [
      "Sync lag",
      chain.lag_blocks === null ? "–" : `${chain.lag_blocks} blocks`,
      chain.lag_blocks > 5 ? "warn" : "",
    ],
    ["Subscriptions", `${chain.tracked ?? 0} tracked, ${chain.delegated ?? 0} delegated`],
    ["Deliveries", `${d.sent} sent, ${d.confirmed} confirmed, ${d.reverted} reverted, ${d.failed} failed`],
    ["In flight", `${chain.pending_txs ?? 0} transactions`],
    ["Wallet", `${chain.wallet.address || "–"} · ${ether(chain.wallet.balance_wei)}`, "mono"],
    [
      "Payment wallet",
      chain.payment_wallet.address
        ? `${chain.payment_wallet.address} · ${ether(chain.payment_wallet.balance_wei)}`
        : "none",
      "mono",
    ],
    [
      "RPC",
      `${chain.rpc.url ?? "–"}: ${chain.rpc.requests} requests, ${chain.rpc.failures} errors, ${chain.rpc.exhausted} given up, ${chain.rpc.failovers} failovers`,
    ],
    ...Object.entries(chain.rpc.by_endpoint).map(([endpoint, n]) => [
      `RPC ${endpoint}`,
      `${n.requests} requests, ${n.failures} errors`,
      n.failures > 0 ? "warn" : "",
    ]),
    ...(chain.rpc.last_error ? [["RPC last error", chain.rpc.last_error, "bad"]] : []),
  ]);
  const rate = chain.deliveries_per_minute;
  const max = lines(
    $("deliveries-chart"),
    [rate.sent, rate.confirmed, rate.reverted],
    ["line-sent", "line-confirmed", "line-reverted"],
  );
  $("deliveries-chart-max").textContent = `max ${max} per minute`;
  const methods = Object.entries(chain.rpc.by_method).sort((a, b) => b[1] - a[1]);
  rows($("rpc-table"), methods, ([method, n]) => [[el("code", {}, method)], [String(n), "num"]]);
}

function renderLogs(data) {
  $("log-list").replaceChildren(
    ...data.logs.map((line) =>
      el(
        "li",
        {},
        el("span", { class: `lvl ${line.level === "error" ? "bad" : "warn"}` }, line.level),
        el("time", { datetime: line.ts }, clock(Date.parse(line.ts))),
        line.component ? ` [${line.component}] ` : " ",
        line.msg,
        line.fields ? el("span", { class: "fields mono" }, line.fields) : "",
      ),
    ),
  );
  $("logs-empty").hidden = data.logs.length > 0;
}

function render(data) {
  renderNode(data);
  renderHealth(data);
  renderContainers(data);
  renderJobs(data);
  renderChain(data);
  renderLogs(data);
  document.body.dataset.updated = String(data.generated_at);
}

function setStatus(text, stale) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("stale", stale);
}

async function poll() {
  clearTimeout(timer);
  if (!paused && document.visibilityState === "visible") {
    try {
      const response = await fetch("dashboard/data", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
      lastOk = Date.now();
      setStatus(`Updated ${clock(lastOk)}`, false);
    } catch (error) {
      setStatus(
        `Cannot reach the node (${error.message})${lastOk ? `; last update ${clock(lastOk)}` : ""}`,
        true,
      );
    }
  }
  timer = setTimeout(poll, POLL_MS);
}

$("pause").addEventListener("click", (event) => {
  paused = !paused;
  event.currentTarget.setAttribute("aria-pressed", String(paused));
  event.currentTarget.textContent = paused ? "Resume updates" : "Pause updates";
  if (paused) setStatus(`Paused; last update ${clock(lastOk)}`, false);
  else poll();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") poll();
});
poll();
