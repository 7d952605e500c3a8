// Baseline for the start-up benchmark: the smallest Bun HTTP server, compiled the same way as the node.
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.argv[2]),
  fetch: () => Response.json({ status: "healthy" }),
});
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
