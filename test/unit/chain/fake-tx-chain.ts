// A small in-memory chain behind an EIP-1193 `request`, standing in for a JSON-RPC provider (an edge the node
// does not own) so the transaction manager's unit tests can make it misbehave on purpose: lose the reply of a
// broadcast it executed, answer `pending` from a backend that has not seen the pool, report a stale `latest`,
// hold a foreign transaction at our nonce, reorganise a block. Pool rules follow geth: "already known" for the
// same hash, "nonce too low" below the mined count, "replacement transaction underpriced" unless both fee
// fields rise by 10%. A pooled transaction is mined when its nonce is next and its maxFeePerGas covers the
// base fee.
import { type Address, type Hex, HttpRequestError, keccak256, parseTransaction } from "viem";
import type { Logger, LogLevel } from "../../../src/lib/log.ts";

export interface PooledTx {
  hash: Hex;
  nonce: number;
  maxFee: bigint;
  priority: bigint;
  to: Address | undefined;
  value: bigint;
  gas: bigint;
  ours: boolean;
}

interface MinedTx extends PooledTx {
  blockNumber: bigint;
  status: "0x1" | "0x0";
}

/** What the provider does with one eth_sendRawTransaction: answer, or execute it and lose the reply. */
export type SendBehaviour = "answer" | "lose-reply" | "fail-before";

export class FakeTxChain {
  head = 100n;
  baseFee = 1_000_000_000n;
  priorityFee = 1_000_000_000n;
  readonly pool = new Map<number, PooledTx>();
  readonly mined = new Map<Hex, MinedTx>();
  readonly minedByNonce = new Map<number, MinedTx>();
  /** Every raw transaction the provider received, in order, forwarded or not. */
  readonly received: PooledTx[] = [];
  readonly calls: string[] = [];
  /** `pending` answered from a backend that never saw the pool (= latest). */
  stalePending = false;
  /** Answer `latest` with this value for the next reads (a lagging backend). */
  staleLatest: number[] = [];
  /** Per broadcast, in order; "answer" once the script runs out. */
  sendScript: SendBehaviour[] = [];
  /** Blocks come empty (a congested chain): nothing is mined whatever it pays. */
  paused = false;
  /** Transactions that revert when mined. */
  readonly reverting = new Set<Hex>();
  private reorgSalt = 0;

  get latestNonce(): number {
    return this.minedByNonce.size;
  }

  /** Mined nonces are contiguous from 0 (every test account starts fresh). */
  private pendingNonce(): number {
    let nonce = this.latestNonce;
    while (this.pool.has(nonce)) nonce++;
    return nonce;
  }

  blockHash(number: bigint): Hex {
    return keccak256(
      `0x${number.toString(16).padStart(8, "0")}${this.reorgSalt.toString(16).padStart(8, "0")}`,
    );
  }

  /** A transaction with our key sent by someone else (an old lease holder, a previous run). */
  foreignPending(nonce: number, maxFee: bigint): PooledTx {
    const tx: PooledTx = {
      hash: keccak256(`0x${(0xf0000000 + nonce).toString(16)}`),
      nonce,
      maxFee,
      priority: maxFee,
      to: undefined,
      value: 1n,
      gas: 21_000n,
      ours: false,
    };
    this.pool.set(nonce, tx);
    return tx;
  }

  /** One block: the pool's next nonces are mined while their fees cover the base fee. */
  mine(): void {
    this.head++;
    while (!this.paused) {
      const tx = this.pool.get(this.latestNonce);
      if (!tx || tx.maxFee < this.baseFee) break;
      this.pool.delete(tx.nonce);
      const minedTx: MinedTx = {
        ...tx,
        blockNumber: this.head,
        status: this.reverting.has(tx.hash) ? "0x0" : "0x1",
      };
      this.mined.set(tx.hash, minedTx);
      this.minedByNonce.set(tx.nonce, minedTx);
    }
  }

  /** The blocks are replaced by others holding the same transactions, which now end with `status`. */
  reorgWithStatus(hash: Hex, status: "0x1" | "0x0"): void {
    this.reorgSalt++;
    const tx = this.mined.get(hash);
    if (tx) tx.status = status;
  }

  /** A reorganisation to blocks without this transaction (and those after it); the pool does not hold it. */
  reorgRemove(hash: Hex): void {
    this.reorgSalt++;
    const tx = this.mined.get(hash);
    if (!tx) return;
    for (const [nonce, minedTx] of [...this.minedByNonce]) {
      if (nonce < tx.nonce) continue;
      this.minedByNonce.delete(nonce);
      this.mined.delete(minedTx.hash);
    }
  }

  /** Our broadcasts (attempts of our transactions) per nonce, distinct by hash. */
  oursAt(nonce: number): PooledTx[] {
    const byHash = new Map(this.received.filter((t) => t.nonce === nonce).map((t) => [t.hash, t]));
    return [...byHash.values()];
  }

  /** Whether the fake answers eth_getBlockReceipts (off: it is a method the provider does not have). */
  blockReceipts = false;

  count(method: string): number {
    return this.calls.filter((m) => m === method).length;
  }

  readonly request = async ({ method, params }: { method: string; params?: unknown }): Promise<unknown> => {
    this.calls.push(method);
    const args = (params ?? []) as unknown[];
    switch (method) {
      case "eth_getTransactionCount": {
        if (args[1] === "pending") return hex(this.stalePending ? this.latestNonce : this.pendingNonce());
        const stale = this.staleLatest.shift();
        return hex(stale ?? this.latestNonce);
      }
      case "eth_sendRawTransaction":
        return this.sendRaw(args[0] as Hex);
      case "eth_getTransactionReceipt": {
        const tx = this.mined.get(args[0] as Hex);
        if (!tx) return null;
        return {
          transactionHash: tx.hash,
          blockNumber: hex(tx.blockNumber),
          blockHash: this.blockHash(tx.blockNumber),
          gasUsed: hex(tx.gas),
          status: tx.status,
        };
      }
      case "eth_getBlockReceipts": {
        if (!this.blockReceipts)
          throw Object.assign(new Error("the method eth_getBlockReceipts does not exist"), { code: -32601 });
        const number = BigInt(args[0] as Hex);
        return [...this.mined.values()]
          .filter((tx) => tx.blockNumber === number)
          .map((tx) => ({
            transactionHash: tx.hash,
            blockNumber: hex(tx.blockNumber),
            blockHash: this.blockHash(tx.blockNumber),
            gasUsed: hex(tx.gas),
            status: tx.status,
          }));
      }
      case "eth_getTransactionByHash": {
        const hash = args[0] as Hex;
        const known = this.mined.has(hash) || [...this.pool.values()].some((t) => t.hash === hash);
        return known ? { hash } : null;
      }
      case "eth_getBlockByNumber": {
        const number = args[0] === "latest" ? this.head : BigInt(args[0] as Hex);
        if (number > this.head) return null;
        return { hash: this.blockHash(number), number: hex(number), baseFeePerGas: hex(this.baseFee) };
      }
      case "eth_maxPriorityFeePerGas":
        return hex(this.priorityFee);
      case "eth_gasPrice":
        return hex(this.baseFee + this.priorityFee);
      default:
        throw new Error(`fake chain: unexpected method ${method}`);
    }
  };

  private sendRaw(raw: Hex): Hex {
    const parsed = parseTransaction(raw);
    const tx: PooledTx = {
      hash: keccak256(raw),
      nonce: parsed.nonce ?? 0,
      maxFee: parsed.maxFeePerGas ?? parsed.gasPrice ?? 0n,
      priority: parsed.maxPriorityFeePerGas ?? parsed.gasPrice ?? 0n,
      to: parsed.to ?? undefined,
      value: parsed.value ?? 0n,
      gas: parsed.gas ?? 0n,
      ours: true,
    };
    const behaviour = this.sendScript.shift() ?? "answer";
    if (behaviour === "fail-before") throw lostReply();
    this.received.push(tx);
    const answer = this.admit(tx);
    if (behaviour === "lose-reply") throw lostReply();
    if (answer instanceof Error) throw answer;
    return tx.hash;
  }

  private admit(tx: PooledTx): Error | undefined {
    if (tx.nonce < this.latestNonce) return new Error("nonce too low");
    const held = this.pool.get(tx.nonce);
    if (held?.hash === tx.hash) return new Error("already known");
    if (held && (tx.maxFee * 100n < held.maxFee * 110n || tx.priority * 100n < held.priority * 110n)) {
      return new Error("replacement transaction underpriced");
    }
    this.pool.set(tx.nonce, tx);
    return undefined;
  }
}

function hex(value: bigint | number): Hex {
  return `0x${value.toString(16)}`;
}

/** What viem raises for a proxy's 502: a transport failure, not an answer. */
function lostReply(): Error {
  return new HttpRequestError({ url: "http://rpc.invalid", status: 502, details: "Bad Gateway" });
}

export interface RecordedLine {
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps its lines, for assertions on what was logged (and how often). */
export function recordingLog(): Logger & { lines: RecordedLine[] } {
  const lines: RecordedLine[] = [];
  const make = (): Logger => ({
    debug: (msg, fields) => lines.push({ level: "debug", msg, fields: fields ?? {} }),
    info: (msg, fields) => lines.push({ level: "info", msg, fields: fields ?? {} }),
    warn: (msg, fields) => lines.push({ level: "warn", msg, fields: fields ?? {} }),
    error: (msg, fields) => lines.push({ level: "error", msg, fields: fields ?? {} }),
    child: () => make(),
  });
  return Object.assign(make(), { lines });
}
