// The composition root: builds every service from the config, in start-up order, and nothing else.
// Each part is a `createX({ ...deps })` factory; only this file and main.ts see all of them.

import { hostname } from "node:os";
import { createContainerLookup } from "./chain/container-lookup.ts";
import { nodeAddress } from "./chain/node-account.ts";
import { createProcessor } from "./chain/processor.ts";
import { type ChainService, createChainService } from "./chain/service.ts";
import type { Config } from "./config/schema.ts";
import { buildRuleTable } from "./guardian/rules.ts";
import { type Logger, logFileHealth } from "./lib/log.ts";
import type { Service, ServiceHealth } from "./lib/service.ts";
import { createNodeMetrics } from "./metrics/node-metrics.ts";
import { createContainers } from "./orchestration/docker/containers.ts";
import { resolveContainerHost } from "./orchestration/docker/endpoint.ts";
import { createOrchestrator, type Orchestrator } from "./orchestration/orchestrator.ts";
import { createDashboardHistory, observeJobStore } from "./server/dashboard-history.ts";
import { createRestServer } from "./server/rest.ts";
import type { ContainerDirectory } from "./shared/containers.ts";
import type { ContainerSetLookup, DelegatedSubscriptionSink } from "./shared/delegated.ts";
import { createStatsService, SHUTDOWN_FLUSH_MS } from "./stats/service.ts";
import { createJobStore } from "./store/create.ts";
import { createDelegatedJournal } from "./store/delegated-journal.ts";
import { createRedisLease } from "./store/redis-lease.ts";
import { timedStore } from "./store/timed.ts";
import { COMPAT_VERSION, NODE_VERSION } from "./version.ts";

export interface NodeParts {
  /** In start-up order; closed in reverse. */
  services: Service[];
  health(): Record<string, ServiceHealth>;
}

/** `warnings`: from loading the config file, shown on the dashboard. */
export function createNode(config: Config, log: Logger, warnings: readonly string[] = []): NodeParts {
  const services: Service[] = [];
  const health = () => {
    const out: Record<string, ServiceHealth> = {};
    for (const service of services) {
      if (service.health) out[service.name] = service.health();
    }
    const logFile = logFileHealth();
    if (logFile) out.log = logFile;
    return out;
  };

  const pending = () => ({ offchain: store.pendingCount(), onchain: orchestrator.pendingOnchain() });
  // [metrics] what /metrics exports; the parts below report to it (shared/observe.ts). Its sources are read
  // at scrape time, after every part exists.
  const metrics = createNodeMetrics({
    version: NODE_VERSION,
    compatVersion: COMPAT_VERSION,
    health,
    pending,
    counters: () => orchestrator.counters(),
    containers: () => containers.statuses(),
  });

  // [store] job store (embedded by default, Redis when configured)
  const store = timedStore(createJobStore({ config, log: log.child({ component: "store" }) }), metrics);
  services.push(store);

  // Shutdown budget (shutdown_timeout): jobs drain first, then containers stop (a third of it, at most 10 s,
  // plus Docker's own overhead), then the store closes; each later step keeps its share.
  const containerStopS = Math.max(1, Math.min(10, Math.floor(config.shutdown_timeout / 3)));
  // The Metric Sender's final record gets its bounded flush out of the same budget.
  const statsFlushMs = config.forward_stats ? SHUTDOWN_FLUSH_MS : 0;
  const drainMs = config.shutdown_timeout * 1000 - (containerStopS + 2) * 1000 - 3_000 - statsFlushMs;

  // [containers] Container Manager (Docker) or remote containers (manage_containers false / url)
  // The node reaches published ports on container_host, or host.docker.internal when it runs in Docker itself
  // (the reference's RUNTIME=docker convention). Docker stops get a third of the shutdown budget, at most 10 s.
  const containers: ContainerDirectory & Service = createContainers({
    config,
    log: log.child({ component: "containers" }),
    host: resolveContainerHost(config.container_host, process.env.RUNTIME),
    stopTimeoutS: containerStopS,
  });
  services.push(containers);

  // [dashboard] ring buffers behind GET /dashboard: container calls and on-chain jobs from the orchestrator,
  // off-chain jobs from the REST server's store writes, a 2 s sampler of container states and deliveries.
  const history = createDashboardHistory({ statuses: () => containers.statuses(), health });
  services.push(history);

  // One orchestrator runs every job, off-chain and on-chain, so /info's pending.onchain and the counters cover both.
  const orchestrator = createOrchestrator({
    directory: containers,
    jobTimeoutMs: config.job_timeout * 1000,
    log: log.child({ component: "orchestrator" }),
    // Both /metrics and the dashboard's history are told about every container call and finished job.
    observe: {
      containerCall(container, ok, seconds, error) {
        metrics.containerCall(container, ok, seconds);
        history.recordCall(container, seconds * 1000, error);
      },
      job(kind, ok, seconds, job) {
        metrics.job(kind, ok, seconds);
        if (kind !== "onchain" || !job) return; // off-chain ones are seen at the store, with their id
        history.recordJob({
          id: job.label ?? "",
          kind: "onchain",
          containers: [...job.containers],
          status: ok ? "success" : "failed",
          duration_ms: Math.round(seconds * 1000),
          at: Date.now(),
        });
      },
    },
  });
  // Outcomes reported without a timed container call (streams, PUT /api/status) still count per container.
  const restOrchestrator: Orchestrator = {
    ...orchestrator,
    recordOffchain(status, ids) {
      orchestrator.recordOffchain(status, ids);
      history.recordOutcome(ids, status === "success");
    },
  };

  // [chain] RPC, Registry, Coordinator, Reader, Listener → Processor (Wallet, transactions, deliveries)
  const privateKey = config.chain.wallet?.private_key;
  const address = config.chain.enabled && privateKey ? nodeAddress(privateKey) : "";
  let delegated: { sink: DelegatedSubscriptionSink; lookup: ContainerSetLookup } | undefined;
  if (config.chain.enabled) {
    const lookup = createContainerLookup(config.containers.map((container) => container.id));
    const lookupContainers = (hash: string) => lookup.lookupContainers(hash);
    // The processor and the chain service know each other: the service relays subscriptions to the processor,
    // and the processor reads the service's connection and the head its listener polls (no second poller).
    let chain: ChainService | undefined;
    // Hot standby: with Redis, processes sharing this wallet hold a lease there and only the holder sends.
    const lease = config.redis
      ? createRedisLease({
          redis: {
            host: config.redis.host,
            port: config.redis.port,
            password: config.redis.password,
            db: config.redis.db,
          },
          key: `${config.redis.key_prefix}chain-lease:${address.toLowerCase()}`,
          owner: `${hostname()}:${config.server.port}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`,
          ttlMs: config.chain.lease_ttl * 1000,
          log: log.child({ component: "lease" }),
        })
      : undefined;
    if (lease) services.push(lease);
    // Accepted delegated subscriptions outlive a restart, and reach a standby that takes over (shared Redis).
    const journal = createDelegatedJournal(config, log.child({ component: "delegated-journal" }));
    services.push(journal);
    const processor = createProcessor({
      config,
      log: log.child({ component: "processor" }),
      rules: buildRuleTable(config.containers),
      lookup: lookupContainers,
      context: () => chain?.context(),
      head: () => chain?.head() ?? null,
      chainNowMs: () => chain?.chainNowMs() ?? null,
      run: (job, signal) => orchestrator.run(job, signal),
      journal,
      ...(lease ? { lease } : {}),
    });
    chain = createChainService({
      config,
      log: log.child({ component: "chain" }),
      sink: processor,
      lookup,
      observe: metrics,
    });
    services.push(chain, processor);
    delegated = { sink: processor, lookup: lookupContainers };
  }

  // [rest] The REST server goes last: its port opens once the parts it serves are set up.
  services.push(
    createRestServer({
      config,
      log: log.child({ component: "rest" }),
      store: observeJobStore(store, history),
      directory: containers,
      orchestrator: restOrchestrator,
      chain: { enabled: config.chain.enabled, address: () => address },
      // Delegated subscriptions go to the chain side (405 "Chain not enabled" when it is off).
      delegated,
      health,
      dashboard: { history, warnings },
      drainMs,
      observe: metrics,
      metrics,
    }),
  );

  // [stats] the Metric Sender, only with forward_stats (off: no connection is ever opened). Last, so it closes
  // first, once jobs have drained, and its final node record counts them all.
  if (config.forward_stats) {
    services.push(
      createStatsService({
        config,
        log: log.child({ component: "stats" }),
        version: NODE_VERSION,
        compatVersion: COMPAT_VERSION,
        address: address || null,
        // The chain service's health carries chain_id once connected.
        chainId: () => {
          const id = health().chain?.chain_id;
          return typeof id === "number" ? id : null;
        },
        counters: () => orchestrator.counters(),
        pending,
      }),
    );
  }
  return { services, health };
}
