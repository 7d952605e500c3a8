// HTTP request counts and latency, kept without prom-client on purpose: they are observed on every request
// (a job is one submit and, with infernet_client's polling, many GETs), and prom-client hashes a labels object
// on every observation, children included. Measured with bench/offchain (32 clients polling every 1 ms),
// that cost ~100 µs of node CPU per job, about a third more; these plain arrays cost nothing measurable.
// Label values come from fixed sets (known paths or "other", known methods or "other"), so the text needs
// no escaping; the exposition is checked by the strict reader in test/fixtures/prometheus.ts.

export const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Series {
  route: string;
  method: string;
  /** Non-cumulative counts per bucket; the last slot is above the highest bound (+Inf only). */
  buckets: Float64Array;
  sum: number;
  count: number;
  byStatus: Map<number, number>;
}

export interface HttpMetrics {
  observe(route: string, method: string, status: number, seconds: number): void;
  /** The two families, Prometheus text format; empty before the first request. */
  text(): string;
}

export function createHttpMetrics(): HttpMetrics {
  const series = new Map<string, Series>();
  return {
    observe(route, method, status, seconds) {
      const key = `${route} ${method}`;
      let entry = series.get(key);
      if (!entry) {
        entry = {
          route,
          method,
          buckets: new Float64Array(HTTP_BUCKETS.length + 1),
          sum: 0,
          count: 0,
          byStatus: new Map(),
        };
        series.set(key, entry);
      }
      let slot = 0;
      while (slot < HTTP_BUCKETS.length && seconds > (HTTP_BUCKETS[slot] as number)) slot++;
      entry.buckets[slot] = (entry.buckets[slot] ?? 0) + 1;
      entry.sum += seconds;
      entry.count++;
      entry.byStatus.set(status, (entry.byStatus.get(status) ?? 0) + 1);
    },
    text() {
      if (series.size === 0) return "";
      const counts = [
        "# HELP infernet_http_requests_total HTTP requests answered, by route, method and status.",
        "# TYPE infernet_http_requests_total counter",
      ];
      const latency = [
        "# HELP infernet_http_request_duration_seconds Time to the response headers (a stream's body may go on), by route and method.",
        "# TYPE infernet_http_request_duration_seconds histogram",
      ];
      for (const { route, method, buckets, sum, count, byStatus } of series.values()) {
        const labels = `route="${route}",method="${method}"`;
        for (const [status, n] of byStatus)
          counts.push(`infernet_http_requests_total{${labels},status="${status}"} ${n}`);
        let cumulative = 0;
        HTTP_BUCKETS.forEach((bound, i) => {
          cumulative += buckets[i] ?? 0;
          latency.push(
            `infernet_http_request_duration_seconds_bucket{${labels},le="${bound}"} ${cumulative}`,
          );
        });
        latency.push(
          `infernet_http_request_duration_seconds_bucket{${labels},le="+Inf"} ${count}`,
          `infernet_http_request_duration_seconds_sum{${labels}} ${sum}`,
          `infernet_http_request_duration_seconds_count{${labels}} ${count}`,
        );
      }
      return `${counts.join("\n")}\n\n${latency.join("\n")}\n`;
    },
  };
}
