// The Wallet: the only holder of the node's private key. Every transaction is simulated first, against the
// **pending** block, so a delivery already in the mempool (sent before a restart, say) makes a second one fail
// in simulation instead of going out twice. The simulation is eth_estimateGas: it reverts exactly like eth_call
// and gives the gas to send with, in one request. Gas is capped at max_gas_limit; a transaction that needs more
// is not sent. Reverts are decoded (Infernet's custom errors by selector) and matched against
// allowed_sim_errors: an allowed one is sent anyway with gas = max_gas_limit, as in the reference.
import type { Address, Hex, LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { NodeError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { sleep } from "../lib/time.ts";
import { ZERO_ADDRESS } from "../shared/subscription.ts";
import { type DecodedRevert, decodeRevertData, findRevertData, revertText } from "./infernet-errors.ts";
import { normalisePrivateKey } from "./node-account.ts";
import type { ChainClient } from "./rpc.ts";
import type { SentTx, TransactionManager } from "./transactions.ts";

/** The simulation reverted (and the revert is not in allowed_sim_errors). */
export class SimulationRevertedError extends NodeError {
  override name = "SimulationRevertedError";
  constructor(readonly revert: DecodedRevert) {
    super(`simulation reverted: ${revert.infernet?.message ?? revert.reason}`, {
      meta: { reason: revert.reason, data: revert.data },
    });
  }
}

/** The transaction would need more gas than chain.wallet.max_gas_limit allows. */
export class GasLimitError extends NodeError {
  override name = "GasLimitError";
}

export interface SimulationResult {
  /** Gas to send with: the estimate plus headroom, at most max_gas_limit. */
  gas: bigint;
  /** The simulation reverted with an allowed error (allowed_sim_errors) and was treated as passed. */
  skipped: boolean;
}

export interface Wallet {
  readonly address: Address;
  /** chain.wallet.payment_address, or the zero address when unset (what deliverCompute then receives). */
  readonly paymentAddress: Address;
  /** Simulates a call from the node's address against the pending block. Throws SimulationRevertedError. */
  simulate(to: Address, data: Hex): Promise<SimulationResult>;
  /** Simulates, then sends through the nonce manager. Throws SimulationRevertedError / GasLimitError. */
  execute(to: Address, data: Hex, labels?: Record<string, unknown>): Promise<SentTx & SimulationResult>;
}

export interface WalletDeps {
  client: ChainClient;
  privateKey: string;
  paymentAddress: string | null;
  maxGasLimit: number;
  allowedSimErrors: readonly string[];
  transactions: (account: LocalAccount) => TransactionManager;
  log: Logger;
  /** Attempts per simulation when it reverts (the reference: 3 tries 0.5 s apart; the chain may catch up). */
  simulationAttempts?: number;
  simulationRetryMs?: number;
}

/** Headroom over the estimate: the pending block's state can change before ours is mined. */
const GAS_HEADROOM_PERCENT = 25n;

export function createWallet(deps: WalletDeps): Wallet & { readonly transactions: TransactionManager } {
  const account = privateKeyToAccount(normalisePrivateKey(deps.privateKey));
  const transactions = deps.transactions(account);
  const maxGas = BigInt(deps.maxGasLimit);
  const allowed = deps.allowedSimErrors.map((entry) => entry.toLowerCase()).filter(Boolean);
  const attempts = Math.max(1, deps.simulationAttempts ?? 3);
  const retryMs = deps.simulationRetryMs ?? 500;
  const paymentAddress = (deps.paymentAddress || ZERO_ADDRESS) as Address;

  async function estimate(to: Address, data: Hex): Promise<bigint> {
    const result = await deps.client.request({
      method: "eth_estimateGas",
      params: [{ from: account.address, to, data }, "pending"],
    } as never);
    return BigInt(result as Hex);
  }

  async function simulate(to: Address, data: Hex): Promise<SimulationResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        const estimated = await estimate(to, data);
        const gas = (estimated * (100n + GAS_HEADROOM_PERCENT)) / 100n;
        if (estimated > maxGas) {
          throw new GasLimitError(
            `transaction needs ${estimated} gas, more than chain.wallet.max_gas_limit ${maxGas}`,
            { meta: { estimated: estimated.toString(), max_gas_limit: deps.maxGasLimit } },
          );
        }
        return { gas: gas > maxGas ? maxGas : gas, skipped: false };
      } catch (error) {
        const data = findRevertData(error);
        if (data === undefined) throw error; // not a revert: transport or gas-limit trouble
        const revert = decodeRevertData(data);
        const text = revertText(revert, error).toLowerCase();
        if (allowed.some((entry) => text.includes(entry))) {
          deps.log.debug("Simulation error allowed by allowed_sim_errors; sending anyway", {
            reason: revert.reason,
          });
          return { gas: maxGas, skipped: true };
        }
        if (attempt >= attempts) throw new SimulationRevertedError(revert);
        await sleep(retryMs);
      }
    }
  }

  return {
    address: account.address,
    paymentAddress,
    transactions,
    simulate,
    async execute(to, data, labels) {
      const simulation = await simulate(to, data);
      const sent = await transactions.send({ to, data, gas: simulation.gas, labels: labels ?? {} });
      return { ...sent, ...simulation };
    },
  };
}
