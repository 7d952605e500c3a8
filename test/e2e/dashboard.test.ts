// GET /dashboard through the release binary (node_modules hidden) with three managed echo containers, looked
// at by headless Chromium: loads cleanly and offline, names every container, draws its charts, updates itself
// while jobs run, fits a 375 px phone screen, carries no secret and no job data, and is refused off loopback.
// Prints the page weight of a first load and the node's CPU time while one dashboard stays open.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchChromium } from "../fixtures/chromium.ts";
import { waitFor } from "../fixtures/net.ts";
import { finishedJob, type NodeFixture, postJson, startNode } from "../integration/server/node-process.ts";

// What page.evaluate callbacks touch in the browser (the project's tsconfig has no DOM lib; this is module-local).
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  documentElement: { scrollWidth: number; clientWidth: number };
  querySelector(selector: string): { getAttribute(name: string): string | null } | null;
};

const SECRET = "dashboard-secret-Zq81xv";
const INPUT_MARKER = "dashboard-input-marker-7Kp2";

let fixture: NodeFixture;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];
const requests: string[] = [];
let firstLoadBytes = 0;

/** utime + stime of a process, in ms (Linux /proc; clock ticks are 100 Hz on Linux). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) if (entry.family === "IPv4" && !entry.internal) return entry.address;
  }
  return undefined;
}

beforeAll(async () => {
  [fixture, browser] = await Promise.all([
    startNode("dashboard", {
      store: "embedded",
      // Bound on every interface, so that a request to the machine's LAN address comes from a non-loopback peer.
      extra: { server: { host: "0.0.0.0" } },
      // A value that must never reach the page, though the container gets it.
      containers: { echo: { env: { API_TOKEN: SECRET } } },
    }),
    launchChromium(),
  ]);
  context = await browser.newContext({ viewport: { width: 375, height: 812 }, serviceWorkers: "block" });
  page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("requestfailed", (req) =>
    problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`),
  );
  page.on("request", (req) => requests.push(req.url()));
  page.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  // Bytes on the wire (headers and bodies, as sent) for every response, from the DevTools protocol.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.loadingFinished", (event) => {
    firstLoadBytes += event.encodedDataLength;
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await fixture?.[Symbol.asyncDispose]();
});

const containerIds = () => Object.values(fixture.ids);

describe("dashboard (binary + Chromium)", () => {
  test("default: loads with no console error or failed request, offline, names every container, fits 375 px", async () => {
    await page.goto(`${fixture.node.url}/dashboard`);
    // The first snapshot has been rendered once the body carries its time.
    await page.waitForFunction(() => document.body.dataset.updated !== undefined, undefined, {
      timeout: 15_000,
    });
    const bytes = firstLoadBytes;
    const table = await page.locator("#containers-table").textContent();
    for (const id of containerIds()) expect(table).toContain(id);
    expect(await page.locator("#health-badge").textContent()).toBe("healthy");
    expect(await page.locator("#node-list").textContent()).toContain("embedded");
    // Nothing but the node itself was asked for anything.
    const origin = new URL(fixture.node.url).origin;
    expect(requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    expect(widths.client).toBe(375);
    expect(widths.scroll).toBeLessThanOrEqual(widths.client);
    expect(problems).toEqual([]);
    console.log(
      `[dashboard] first load: ${bytes} bytes on the wire (${requests.length} requests: ${requests.map((u) => new URL(u).pathname).join(", ")})`,
    );
  });

  test("behavior: updates itself while jobs run: counts, rate chart, latest jobs, p50/p99; never job data", async () => {
    const before = Number((await page.locator("#jobs-chart").getAttribute("data-total")) ?? "0");
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      // Every third job fails (a non-JSON reply), so both series of the chart get bars.
      const data = i % 3 === 2 ? { text: "not json" } : { marker: INPUT_MARKER, i };
      const res = await postJson(`${fixture.node.url}/api/jobs`, { containers: [fixture.ids.echo], data });
      expect(res.status).toBe(200);
      ids.push(((await res.json()) as { id: string }).id);
    }
    for (const id of ids) await finishedJob(fixture.node.url, id);
    // No reload: the page's own polling brings the new state.
    await page.waitForFunction(
      (want) => Number(document.querySelector("#jobs-chart")?.getAttribute("data-total")) >= want,
      before + ids.length,
      { timeout: 15_000 },
    );
    expect(await page.locator("#jobs-chart .bar-ok").getAttribute("d")).toMatch(/^M\d+ /);
    expect(await page.locator("#jobs-chart .bar-failed").getAttribute("d")).toMatch(/^M\d+ /);
    const latest = await page.locator("#jobs-table").textContent();
    for (const id of ids) expect(latest).toContain(id);
    // Rows follow the config order: the echo container is the first.
    const row = page.locator("#containers-table tbody tr").nth(0);
    const cell = (label: string) => row.locator(`td[data-label="${label}"]`).textContent();
    expect(await cell("Container")).toBe(fixture.ids.echo);
    expect(await cell("p50")).toMatch(/^\d+(\.\d+)? m?s$/);
    expect(await cell("p99")).toMatch(/^\d+(\.\d+)? m?s$/);
    expect(Number(await cell("Failed"))).toBeGreaterThanOrEqual(2);
    expect(await cell("Last error")).toContain("replied with non-JSON content");
    expect(await page.content()).not.toContain(INPUT_MARKER);
    expect(problems).toEqual([]);
    if (process.env.DASHBOARD_SCREENSHOT)
      await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
  });

  test("behavior: no secret and no job data in anything the dashboard serves; read-only", async () => {
    for (const path of ["/dashboard", "/dashboard/app.js", "/dashboard/style.css", "/dashboard/data"]) {
      const res = await fetch(`${fixture.node.url}${path}`);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(INPUT_MARKER);
    }
    for (const method of ["POST", "PUT", "DELETE"]) {
      const res = await fetch(`${fixture.node.url}/dashboard/data`, { method });
      expect(res.status).toBe(405);
    }
  });

  test("error: refused (403 JSON) from a non-loopback address", async () => {
    const lan = lanAddress();
    if (!lan) {
      console.log("[dashboard] no non-loopback IPv4 here; the refusal is shown by the app-level test only");
      return;
    }
    const port = new URL(fixture.node.url).port;
    for (const path of ["/dashboard", "/dashboard/data", "/dashboard/app.js"]) {
      const res = await fetch(`http://${lan}:${port}${path}`);
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({
        error: "Forbidden",
        params: { reason: "the dashboard is served only to server.dashboard_allowed_ips" },
      });
    }
    // The same page in the browser, from that address: refused too.
    const other = await context.newPage();
    const response = await other.goto(`http://${lan}:${port}/dashboard`);
    expect(response?.status()).toBe(403);
    await other.close();
  });

  test("behavior: CPU the node spends on one open dashboard (10 s here; bench/dashboard for 60 s)", async () => {
    const pid = fixture.node.pid();
    if (pid === undefined) throw new Error("the node is not running");
    const polls = () => page.evaluate(() => Number(document.body.dataset.updated));
    const start = await polls();
    const cpuStart = cpuMs(pid);
    const wallStart = performance.now();
    // Wait for five more snapshots (about 10 s at one every 2 s): a count of polls, not a sleep.
    let seen = start;
    let count = 0;
    await waitFor(
      "five dashboard polls",
      async () => {
        const now = await polls();
        if (now !== seen) {
          seen = now;
          count++;
        }
        return count >= 5 ? true : undefined;
      },
      30_000,
    );
    const cpu = cpuMs(pid) - cpuStart;
    const wall = performance.now() - wallStart;
    console.log(
      `[dashboard] node CPU with one dashboard open: ${cpu} ms over ${(wall / 1000).toFixed(1)} s (${((cpu / wall) * 100).toFixed(2)} % of one core)`,
    );
    expect(problems).toEqual([]);
  }, 40_000);
});
