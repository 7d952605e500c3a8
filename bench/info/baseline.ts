// Baseline for the /info benchmark: the smallest Bun HTTP server answering GET /info with the node's own /info
// body (passed in INFO_BODY), same headers. Usage: bun run bench/info/baseline.ts <port>
const body = process.env.INFO_BODY ?? "{}\n";
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.argv[2]),
  development: false,
  fetch: () => new Response(body, { headers: { "Content-Type": "application/json" } }),
});
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
