// The module boundaries the README promises, checked from the import lines of every file under src/.
import { describe, expect, test } from "bun:test";
import { join, relative } from "node:path";

const root = join(import.meta.dir, "../..");
const src = join(root, "src");

interface Edge {
  file: string; // relative to src/, e.g. "server/app.ts"
  target: string; // a package name, or a path relative to src/ for local imports
}

async function importEdges(): Promise<Edge[]> {
  const edges: Edge[] = [];
  for await (const path of new Bun.Glob("**/*.ts").scan(src)) {
    const text = await Bun.file(join(src, path)).text();
    for (const match of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gms)) {
      const spec = match[1] ?? "";
      const target = spec.startsWith(".") ? relative(src, join(src, path, "..", spec)) : spec;
      edges.push({ file: path, target });
    }
  }
  return edges;
}

const edges = await importEdges();
const area = (path: string) => path.split("/")[0] ?? "";
const packageOf = (target: string) =>
  target.startsWith("@") ? target.split("/").slice(0, 2).join("/") : (target.split("/")[0] ?? "");
const isLocal = (target: string) => target.endsWith(".ts");

function offenders(rule: (edge: Edge) => boolean): string[] {
  return edges.filter(rule).map((edge) => `${edge.file} → ${edge.target}`);
}

describe("architecture", () => {
  test("default: imports were found", () => {
    expect(edges.length).toBeGreaterThan(100);
  });

  test("behavior: no barrel index.ts files", () => {
    expect(edges.filter((edge) => edge.file.endsWith("/index.ts") || edge.file === "index.ts")).toEqual([]);
  });

  test("behavior: each third-party client library stays in its one room", () => {
    const rooms: Record<string, (file: string) => boolean> = {
      dockerode: (file) => file.startsWith("orchestration/docker/"),
      ioredis: (file) => file.startsWith("store/redis"),
      "bun:sqlite": (file) => file.startsWith("store/embedded"),
      hono: (file) => file.startsWith("server/"),
      viem: (file) => file.startsWith("chain/") || file.startsWith("guardian/"),
      "prom-client": (file) => file.startsWith("metrics/"),
      "@msgpack/msgpack": (file) => file.startsWith("stats/"),
    };
    expect(
      offenders((edge) => {
        const allowed = rooms[packageOf(edge.target)];
        return allowed !== undefined && !allowed(edge.file);
      }),
    ).toEqual([]);
  });

  test("behavior: lib imports nothing else from src; config and shared import only lib (and config)", () => {
    expect(offenders((e) => area(e.file) === "lib" && isLocal(e.target) && area(e.target) !== "lib")).toEqual(
      [],
    );
    expect(
      offenders(
        (e) => area(e.file) === "config" && isLocal(e.target) && !["lib", "config"].includes(area(e.target)),
      ),
    ).toEqual([]);
    expect(
      offenders(
        (e) =>
          area(e.file) === "shared" &&
          isLocal(e.target) &&
          !["lib", "config", "shared"].includes(area(e.target)),
      ),
    ).toEqual([]);
  });

  test("behavior: the REST server never reaches into the chain, Docker or a store implementation", () => {
    expect(
      offenders(
        (e) =>
          area(e.file) === "server" &&
          (area(e.target) === "chain" ||
            e.target.startsWith("orchestration/docker/") ||
            area(e.target) === "store"),
      ),
    ).toEqual([]);
  });

  test("behavior: stores, guardian and orchestration do not import the server, the chain or the root", () => {
    for (const lower of ["store", "guardian", "orchestration", "metrics", "stats"]) {
      expect(
        offenders(
          (e) =>
            area(e.file) === lower &&
            (area(e.target) === "server" ||
              area(e.target) === "chain" ||
              ["node.ts", "main.ts"].includes(e.target)),
        ),
      ).toEqual([]);
    }
  });

  test("behavior: only main.ts imports node.ts", () => {
    expect(offenders((e) => e.target === "node.ts" && e.file !== "main.ts")).toEqual([]);
  });
});
