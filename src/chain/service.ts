// The chain read side as one Service: set-up connects (eth_chainId) and resolves the Registry, bounded by the
// set-up signal; run() is the listener, so the snapshot sync never holds the REST port closed (the reference
// opened its port only after the whole sync). Progress, RPC counters and the last error go to health().
//
// An RPC that is down at start-up does not stop the node: set-up logs it and run() keeps connecting with
// capped backoff while health() says so. A registry_address that answers but holds no Registry is a
// configuration error and fails start-up with a one-line reason.
import type { Config } from "../config/schema.ts";
import { buildRuleTable } from "../guardian/rules.ts";
import { describeError, StartupError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Service, ServiceHealth } from "../lib/service.ts";
import { backoffMs, sleep } from "../lib/time.ts";
import type { SubscriptionObserver } from "../shared/observe.ts";
import type { Clock } from "../shared/subscription.ts";
import type { SubscriptionSink } from "../shared/subscriptions.ts";
import { type BlockInfo, type BlockWatcher, createBlockWatcher } from "./block-watcher.ts";
import { type ContainerLookup, createContainerLookup } from "./container-lookup.ts";
import { type Coordinator, createCoordinator } from "./coordinator.ts";
import { createListener, type Listener } from "./listener.ts";
import { createReader, type Reader } from "./reader.ts";
import { type RegistryAddresses, resolveRegistry } from "./registry.ts";
import { createRpc, type Rpc, rpcErrorText } from "./rpc.ts";
import { createWalletChecker, type WalletChecker } from "./wallet-checker.ts";

/** Set-up's wait for the first connection; later attempts run in the background. */
const SETUP_BUDGET_MS = 3_000;

export interface ChainServiceDeps {
  config: Config;
  log: Logger;
  /** Where relayed subscriptions go (the Processor). */
  sink: SubscriptionSink;
  lookup?: ContainerLookup;
  clock?: Clock;
  /** Backoff for RPC retries inside one request (defaults 250 ms … 5 s). */
  rpcBackoff?: { baseMs: number; maxMs: number };
  /** How long set-up waits for the first connection before deferring it to run() (default 3 s). */
  setupBudgetMs?: number;
  /** Told about on-chain subscriptions the Guardian filtered out (for /metrics). */
  observe?: SubscriptionObserver;
  /** Backoff for failed sync steps / reconnects (defaults 500 ms … 30 s). */
  retryBackoff?: { baseMs: number; maxMs: number };
}

/** What the later chain parts (processor, wallet) need once the service is connected. */
export interface ChainContext {
  rpc: Rpc;
  chainId: number;
  addresses: RegistryAddresses;
  coordinator: Coordinator;
  reader: Reader;
  walletChecker: WalletChecker;
  lookup: ContainerLookup;
}

export interface ChainService extends Service {
  readonly rpc: Rpc;
  /** Undefined until connected. */
  context(): ChainContext | undefined;
  listener(): Listener | undefined;
  /** The newest block seen (no RPC call); null before the first. */
  head(): bigint | null;
  /** The newest block seen, with its timestamp and hash; null before the first. */
  latestBlock(): BlockInfo | null;
  /** The chain's clock in ms (the latest block's timestamp plus the time since it was seen); null before a block. */
  chainNowMs(): number | null;
}

export function createChainService(deps: ChainServiceDeps): ChainService {
  const { config, log } = deps;
  const chain = config.chain;
  if (!chain.rpc_url || !chain.registry_address) {
    throw new Error("chain service needs chain.rpc_url and chain.registry_address");
  }
  const registryAddress = chain.registry_address;
  const rpc = createRpc({
    urls: [chain.rpc_url, ...chain.rpc_fallback_urls],
    timeoutMs: chain.rpc_timeout * 1000,
    maxRetries: chain.rpc_max_retries,
    log: log.child({ component: "rpc" }),
    ...(deps.rpcBackoff
      ? { backoffBaseMs: deps.rpcBackoff.baseMs, backoffMaxMs: deps.rpcBackoff.maxMs }
      : {}),
  });
  const lookup = deps.lookup ?? createContainerLookup(config.containers.map((c) => c.id));
  const rules = buildRuleTable(config.containers);
  const paymentAddress = chain.wallet?.payment_address || null;
  const hostClock = deps.clock ?? Date.now;
  const retryBaseMs = deps.retryBackoff?.baseMs ?? 500;
  // Capped at 10 s: after an RPC outage the node is back at work within about 10 s of the RPC, at the cost of
  // one request per 10 s while it is down.
  const retryMaxMs = deps.retryBackoff?.maxMs ?? 10_000;

  let context: ChainContext | undefined;
  let listener: Listener | undefined;
  let watcher: BlockWatcher | undefined;
  let watcherError: string | undefined;
  let connectError: string | undefined;
  let firstAttempt: Promise<boolean> | undefined;

  const connect = async (): Promise<void> => {
    const chainId = await rpc.client.getChainId();
    const addresses = await resolveRegistry(rpc.client, registryAddress);
    const coordinator = createCoordinator(rpc.client, addresses.coordinator);
    const reader = createReader(rpc.client, addresses.reader);
    const walletChecker = createWalletChecker(rpc.client, addresses.walletFactory);
    context = { rpc, chainId, addresses, coordinator, reader, walletChecker, lookup };
    const blocks = createBlockWatcher({
      getLatestBlock: async () => {
        const block = await rpc.client.getBlock({ blockTag: "latest" });
        return {
          number: block.number,
          timestamp: Number(block.timestamp),
          hash: block.hash,
          baseFeePerGas: block.baseFeePerGas ?? null,
        };
      },
      periodMs: Math.max(50, chain.snapshot_sync.sync_period * 1000),
      sleep,
      onError: (error, consecutive) => {
        watcherError = rpcErrorText(error);
        if (consecutive === 1 || consecutive % 20 === 0) {
          log.warn("Could not read the latest block; retrying", { error: rpcErrorText(error), consecutive });
        }
      },
    });
    watcher = blocks;
    listener = createListener({
      // The watcher's head (no request of the listener's own) while the watcher is reading blocks; while it is
      // failing (or before its first block) the listener asks itself, so it sees the outage as well.
      getBlockNumber: async () => {
        const latest = blocks.consecutiveFailures() === 0 ? blocks.latest() : null;
        return latest ? latest.number : (await blocks.poll()).number;
      },
      coordinator,
      reader,
      lookup,
      rules,
      paymentAddress,
      sink: deps.sink,
      log: log.child({ component: "listener" }),
      // Expiry is judged by the chain's clock (block.timestamp, as the Coordinator), the host's only until a block.
      clock: () => blocks.chainNowMs() ?? hostClock(),
      ...(deps.observe ? { observe: deps.observe } : {}),
      settings: {
        batchSize: chain.snapshot_sync.batch_size,
        batchSleepMs: chain.snapshot_sync.sleep * 1000,
        startingSubId: chain.snapshot_sync.starting_sub_id,
        syncPeriodMs: chain.snapshot_sync.sync_period * 1000,
        trailHeadBlocks: chain.trail_head_blocks,
        retryBaseMs,
        retryMaxMs,
      },
    });
    connectError = undefined;
    log.info("Connected to chain", {
      chain_id: chainId,
      rpc: rpc.stats().url,
      registry: addresses.registry,
      coordinator: addresses.coordinator,
      reader: addresses.reader,
      wallet_factory: addresses.walletFactory,
    });
  };

  /**
   * Only a definite "no Registry at registry_address" is fatal (a config error); every other failure — no
   * answer, an HTTP 404/401/5xx from a proxy in front of the RPC, a JSON-RPC error — is remembered, shown in
   * /health and tried again, so that an RPC hiccup at start-up never ends the node.
   */
  const tryConnect = async (): Promise<boolean> => {
    try {
      await connect();
      return true;
    } catch (error) {
      if (error instanceof StartupError) throw error;
      connectError = rpcErrorText(error);
      return false;
    }
  };

  const connectAndListen = async (signal: AbortSignal): Promise<void> => {
    if (firstAttempt) {
      // A StartupError here already failed setup; after a deferral it is reported like any other error.
      await firstAttempt.catch((error: unknown) => {
        connectError = describeError(error);
      });
      firstAttempt = undefined;
    }
    for (let attempt = 0; !listener && !signal.aborted; attempt++) {
      try {
        if (await tryConnect()) break;
      } catch (error) {
        // Not an outage (e.g. no Registry at the address): keep the node up, report it, try again slowly.
        connectError = describeError(error);
      }
      const delay = backoffMs(attempt, retryBaseMs, retryMaxMs);
      log.warn("Chain not connected, retrying", { error: connectError, retry_in_ms: delay });
      await sleep(delay, signal);
    }
    if (signal.aborted) return;
    // The block watcher runs beside the listener: a long snapshot sync does not stop the processor's block clock.
    await Promise.all([watcher?.run(signal), listener?.run(signal)]);
  };

  return {
    name: "chain",
    rpc,
    context: () => context,
    listener: () => listener,
    // The listener reads its head through the watcher (poll() records what it reads): one source for both.
    head: () => watcher?.latest()?.number ?? null,
    latestBlock: () => watcher?.latest() ?? null,
    chainNowMs: () => watcher?.chainNowMs() ?? null,
    async setup(signal) {
      // Bounded: a black-holed RPC must not hold the REST port closed for retries × rpc_timeout. If the first
      // connection attempt is not done in time it carries on in the background and run() picks it up.
      const attempt = tryConnect();
      firstAttempt = attempt;
      attempt.catch(() => {}); // handled in run() if it fails after set-up gave up waiting
      // A reachable RPC answers eth_chainId and the Registry reads in well under this; an unreachable one must
      // not hold the REST port (and off-chain work) closed for retries × rpc_timeout.
      const budget = deps.setupBudgetMs ?? SETUP_BUDGET_MS;
      const timer = new AbortController();
      const waited = sleep(budget, AbortSignal.any([signal, timer.signal])).then(() => "pending" as const);
      const outcome = await Promise.race([attempt, waited]).finally(() => timer.abort());
      if (outcome === true) {
        firstAttempt = undefined;
        return;
      }
      log.warn("Chain RPC unreachable at start-up; the node starts and keeps trying", {
        error: connectError ?? `no answer within ${budget} ms`,
      });
    },
    async run(signal) {
      // Shutdown must not wait for an RPC call that hangs until rpc_timeout × retries: stop at the abort.
      // Work in flight then finishes (or times out) in the background; reads have nothing to undo.
      await Promise.race([connectAndListen(signal), whenAborted(signal)]);
    },
    health(): ServiceHealth {
      const stats = rpc.stats();
      if (!context || !listener) {
        return { ok: false, detail: `not connected: ${connectError ?? "connecting"}`, rpc: stats };
      }
      const progress = listener.progress();
      const blocksFailing = (watcher?.consecutiveFailures() ?? 0) > 0;
      const ok = progress.consecutive_failures === 0 && !blocksFailing;
      const detail = blocksFailing
        ? `cannot read the latest block: ${watcherError ?? "unknown error"}`
        : ok
          ? progress.phase === "snapshot"
            ? `snapshot sync in progress (${progress.last_sub_id} of ${progress.head_sub_id ?? "?"})`
            : "synced"
          : `sync failing: ${progress.last_error ?? "unknown error"}`;
      return {
        ok,
        detail,
        chain_id: context.chainId,
        sync: progress,
        rpc: stats,
        contracts: {
          registry: context.addresses.registry,
          coordinator: context.addresses.coordinator,
          reader: context.addresses.reader,
          wallet_factory: context.addresses.walletFactory,
        },
      };
    },
  };
}

function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
