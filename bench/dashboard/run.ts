// What one open dashboard costs the node: the release binary (node_modules hidden, three managed echo
// containers, embedded store) is measured for `seconds` with nothing open (baseline), then for `seconds` with
// one dashboard open in headless Chromium (it polls /dashboard/data every 2 s). Reports the node's CPU time
// (utime + stime from /proc) for both windows and the page weight of a first load (bytes on the wire, from the
// DevTools protocol). Then runs jobs for a while and saves a screenshot (docs/dashboard.png by default).
// Usage: bun run bench/dashboard/run.ts [seconds=60] [screenshot=docs/dashboard.png]
import { readFileSync } from "node:fs";
import { launchChromium } from "../../test/fixtures/chromium.ts";
import { postJson, startNode } from "../../test/integration/server/node-process.ts";

const seconds = Number(process.argv[2] ?? 60);
const screenshot = process.argv[3] ?? "docs/dashboard.png";

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function cpuOver(pid: number, ms: number): Promise<number> {
  const start = cpuMs(pid);
  await Bun.sleep(ms);
  return cpuMs(pid) - start;
}

await using fixture = await startNode("dashboard-bench", { store: "embedded" });
const pid = fixture.node.pid();
if (pid === undefined) throw new Error("node not running");
const browser = await launchChromium();
try {
  const idle = await cpuOver(pid, seconds * 1000);
  console.log(`node CPU, nothing open:        ${idle} ms over ${seconds} s`);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  let bytes = 0;
  let raw = 0;
  cdp.on("Network.loadingFinished", (event) => {
    bytes += event.encodedDataLength;
  });
  page.on("response", async (response) => {
    raw += (await response.body().catch(() => Buffer.alloc(0))).length;
  });
  await page.goto(`${fixture.node.url}/dashboard`);
  await page.waitForFunction(() =>
    Boolean(
      (globalThis as { document?: { body: { dataset: { updated?: string } } } }).document?.body.dataset
        .updated,
    ),
  );
  console.log(`first load: ${bytes} bytes on the wire (${raw} bytes uncompressed)`);

  const open = await cpuOver(pid, seconds * 1000);
  console.log(`node CPU, one dashboard open:  ${open} ms over ${seconds} s`);
  console.log(
    `dashboard share:               ${open - idle} ms over ${seconds} s (${(((open - idle) / (seconds * 1000)) * 100).toFixed(2)} % of one core)`,
  );

  // Some traffic for the picture: bursts of jobs, a few failing, over 40 s.
  const echo = fixture.ids.echo;
  const echo2 = fixture.ids.echo2;
  for (let round = 0; round < 20; round++) {
    const n = 3 + ((round * 7) % 11);
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        postJson(`${fixture.node.url}/api/jobs`, {
          containers: i % 4 === 0 ? [echo, echo2] : [echo],
          data: i % 9 === 8 ? { text: "not json" } : { sleep_ms: 5 + ((i * 13) % 40) },
        }),
      ),
    );
    await Bun.sleep(2_000);
  }
  await page.waitForTimeout(2_500);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
} finally {
  await browser.close();
}
