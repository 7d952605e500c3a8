// infernet-echo: an Infernet-compliant example service (container protocol: POST /service_output on port 3000).
// It echoes what it receives, and the job data can steer it into the failure modes a node must survive, so
// the node's tests can exercise them against a real container: see ../README.md for the controls.

const PORT = Number(process.env.PORT ?? 3000);
const SERVICE_ID = process.env.SERVICE_ID ?? "infernet-echo";
const MODELS = (process.env.SUPPORTED_MODELS ?? "echo").split(",").filter(Boolean);

interface JobInput {
  source?: number;
  destination?: number;
  data?: unknown;
  requires_proof?: boolean;
}

interface Controls {
  sleep_ms?: number;
  status?: number;
  text?: string;
  invalid_json?: boolean;
  chunks?: unknown[];
  chunk_delay_ms?: number;
  hang?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function controlsOf(data: unknown): Controls {
  return data && typeof data === "object" && !Array.isArray(data) ? (data as Controls) : {};
}

/** Unprefixed hex of a value: hex strings pass through (without 0x), anything else is UTF-8 of its JSON. */
function toHex(value: unknown): string {
  if (typeof value === "string" && /^(0x)?([0-9a-fA-F]{2})*$/.test(value)) return value.replace(/^0x/, "");
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return Buffer.from(text ?? "", "utf8").toString("hex");
}

// Ritual's echo service (infernet_services test_services/echo): on-chain data that is the hex of
// abi.encode(string input, string proof), or an object whose `input` is such hex (delegated subscriptions),
// is answered as that service answers it. Hand-rolled ABI (the image carries no node_modules).

const WORD = 32;

/** abi.encode(string) as unprefixed hex. */
function abiEncodeString(text: string): string {
  const bytes = Buffer.from(text, "utf8");
  const padded = Buffer.alloc(Math.ceil(bytes.length / WORD) * WORD);
  bytes.copy(padded);
  return word(WORD) + word(bytes.length) + padded.toString("hex");
}

function word(n: number): string {
  return n.toString(16).padStart(WORD * 2, "0");
}

/** A word of `buf` at byte `at` as a number, or undefined when out of range or above 2^32. */
function wordAt(buf: Buffer, at: number): number | undefined {
  if (at + WORD > buf.length) return undefined;
  const head = buf.subarray(at, at + WORD - 4);
  if (head.some((b) => b !== 0)) return undefined;
  return buf.readUInt32BE(at + WORD - 4);
}

/** The string whose offset word sits at `head`, or undefined when the layout is not a valid ABI string. */
function stringAt(buf: Buffer, head: number): string | undefined {
  const offset = wordAt(buf, head);
  if (offset === undefined || offset % WORD !== 0) return undefined;
  const length = wordAt(buf, offset);
  if (length === undefined || offset + WORD + length > buf.length) return undefined;
  const bytes = buf.subarray(offset + WORD, offset + WORD + length);
  const text = new TextDecoder("utf-8", { fatal: true });
  try {
    return text.decode(bytes);
  } catch {
    return undefined;
  }
}

/** abi.decode(hex, (string, string)), or undefined when `hex` is not that encoding. */
function decodeStringPair(hex: string): [string, string] | undefined {
  const clean = hex.replace(/^0x/, "");
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) return undefined;
  const buf = Buffer.from(clean, "hex");
  if (buf.length < 4 * WORD || wordAt(buf, 0) !== 2 * WORD) return undefined;
  const first = stringAt(buf, 0);
  const second = stringAt(buf, WORD);
  return first === undefined || second === undefined ? undefined : [first, second];
}

function ritualEcho(input: JobInput): Record<string, string> | undefined {
  const data = input.data;
  const hex =
    typeof data === "string"
      ? data
      : data && typeof data === "object" && typeof (data as { input?: unknown }).input === "string"
        ? (data as { input: string }).input
        : undefined;
  const pair = hex === undefined ? undefined : decodeStringPair(hex);
  if (!pair || hex === undefined) return undefined;
  const [text, proof] = pair;
  return {
    raw_input: hex.replace(/^0x/, ""),
    processed_input: "",
    raw_output: abiEncodeString(text),
    processed_output: "",
    proof: input.requires_proof ? abiEncodeString(proof) : "",
  };
}

function streamOf(chunks: unknown[], delayMs: number): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const [i, chunk] of chunks.entries()) {
        if (i > 0 && delayMs > 0) await sleep(delayMs);
        controller.enqueue(encoder.encode(typeof chunk === "string" ? chunk : JSON.stringify(chunk)));
      }
      controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });
}

async function serviceOutput(req: Request): Promise<Response> {
  let input: JobInput;
  try {
    input = (await req.json()) as JobInput;
  } catch {
    return Response.json(
      { code: "400", name: "bad_request", description: "body is not JSON" },
      { status: 400 },
    );
  }
  const controls = controlsOf(input.data);
  if (controls.hang === true) {
    // A hung service (a deadlocked model): the event loop blocks for good without burning CPU. The kernel still
    // completes new connections on the listening socket, so callers connect and then wait forever, and no
    // signal handler runs either: only SIGKILL ends it.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }
  if (typeof controls.sleep_ms === "number" && controls.sleep_ms > 0) await sleep(controls.sleep_ms);
  if (typeof controls.text === "string") {
    return new Response(controls.text, { headers: { "content-type": "text/plain; charset=utf-8" } });
  }
  if (controls.invalid_json) {
    return new Response('{"broken": ', { headers: { "content-type": "application/json" } });
  }
  if (typeof controls.status === "number" && controls.status !== 200) {
    return Response.json(
      {
        code: String(controls.status),
        name: "requested_status",
        description: "status asked for by the job data",
      },
      { status: controls.status },
    );
  }
  if (input.destination === 2) {
    const chunks = Array.isArray(controls.chunks)
      ? controls.chunks
      : ["echo: ", JSON.stringify(input.data ?? null), "\n"];
    return streamOf(chunks, Number(controls.chunk_delay_ms ?? 0));
  }
  if (input.destination === 0) {
    const ritual = ritualEcho(input);
    if (ritual) return Response.json(ritual);
    // The five-key on-chain output; the node ABI-encodes it for deliverCompute.
    const proof = input.requires_proof ? toHex("echo-proof") : "";
    return Response.json({
      raw_input: toHex(input.data ?? ""),
      processed_input: "",
      raw_output: toHex({ echo: input.data ?? null }),
      processed_output: "",
      proof,
    });
  }
  return Response.json({
    service: SERVICE_ID,
    echo: input.data ?? null,
    source: input.source ?? null,
    destination: input.destination ?? null,
    requires_proof: input.requires_proof ?? null,
  });
}

async function pid1(): Promise<Response> {
  let cmdline = "";
  try {
    cmdline = (await Bun.file("/proc/1/cmdline").text()).split("\0").filter(Boolean).join(" ");
  } catch (error) {
    return Response.json({ error: String(error) }, { status: 500 });
  }
  // With HostConfig.Init Docker runs its init (docker-init / tini) as PID 1 and this server as its child.
  return Response.json({ cmdline, init: process.pid !== 1, pid: process.pid });
}

// Simulates a crashing service (for restart tests): exits with EXIT_CODE (default 1) before it ever listens
// (EXIT_BEFORE_LISTEN=1: a crash loop no probe can catch answering), or after EXIT_AFTER_MS.
if (process.env.EXIT_BEFORE_LISTEN === "1") process.exit(Number(process.env.EXIT_CODE ?? 1));
const exitAfter = Number(process.env.EXIT_AFTER_MS ?? 0);
if (exitAfter > 0) setTimeout(() => process.exit(Number(process.env.EXIT_CODE ?? 1)), exitAfter);

// Simulates a slow service (a model loading) so readiness detection can be tested: the port opens late.
const startupDelay = Number(process.env.STARTUP_DELAY_MS ?? 0);
if (startupDelay > 0) await sleep(startupDelay);

/** Jobs being handled right now (GET /inflight): lets a test act once its calls have really arrived. */
let inFlight = 0;

const server = Bun.serve({
  port: PORT,
  hostname: "0.0.0.0",
  // Jobs may sleep (sleep_ms); Bun's default 10 s idle timeout would cut such a reply.
  idleTimeout: 255,
  async fetch(req) {
    const url = new URL(req.url);
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case "GET /":
        return Response.json({ status: "ok", service: SERVICE_ID });
      case "POST /service_output":
        inFlight++;
        try {
          return await serviceOutput(req);
        } finally {
          inFlight--;
        }
      case "GET /inflight":
        return Response.json({ service_output: inFlight });
      case "GET /service-resources": {
        const model = url.searchParams.get("model_id");
        if (model !== null) {
          return Response.json(
            MODELS.includes(model)
              ? { supported: true }
              : { supported: false, error: `unknown model ${model}` },
          );
        }
        return Response.json({
          version: "0.1.0",
          service_id: SERVICE_ID,
          hardware_capabilities: [{ capability_id: "cpu", cores: navigator.hardwareConcurrency }],
          compute_capability: [{ id: "echo", type: "custom", task: [], models: MODELS }],
        });
      }
      case "GET /env":
        return Response.json(process.env);
      case "GET /argv":
        return Response.json(process.argv);
      case "GET /pid1":
        return pid1();
      case "GET /file": {
        const path = url.searchParams.get("path") ?? "";
        const file = Bun.file(path);
        if (!path || !(await file.exists()))
          return Response.json({ error: `no file ${path}` }, { status: 404 });
        return new Response(await file.text(), { headers: { "content-type": "text/plain; charset=utf-8" } });
      }
      default:
        return Response.json({ error: `no route ${route}` }, { status: 404 });
    }
  },
});

// Stop promptly on `docker stop` even without an init process.
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
