// Fee arithmetic for first sends and replacements, pure. Pools accept a replacement only when every fee field
// rises by at least MIN_POOL_BUMP_PERCENT (geth/reth/op-geth --txpool.pricebump: 10%); a bump that the fee
// cap (chain.wallet.max_fee_per_gas) keeps below that is not sent at all: it would only be refused as
// underpriced, block after block. Fees never exceed the cap.

export type Fees =
  | { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }
  | { type: "legacy"; gasPrice: bigint };

/** The smallest raise a replacement needs in common pools (geth's default price bump). */
export const MIN_POOL_BUMP_PERCENT = 10n;

/** Fees for a first send: 2·baseFee + priority on EIP-1559 chains, the gas price on legacy ones; capped. */
export function initialFees(
  chain: { baseFeePerGas: bigint | undefined; priorityFee: bigint; gasPrice: bigint | undefined },
  cap: bigint | undefined,
): Fees {
  if (chain.baseFeePerGas !== undefined) {
    const maxFeePerGas = capAt(chain.baseFeePerGas * 2n + chain.priorityFee, cap);
    return { type: "eip1559", maxFeePerGas, maxPriorityFeePerGas: min(chain.priorityFee, maxFeePerGas) };
  }
  return { type: "legacy", gasPrice: capAt(chain.gasPrice ?? 0n, cap) };
}

export interface Bump {
  fees: Fees;
  /** The cap held at least one field below what was asked for. */
  capped: boolean;
  /** Every field rises by at least MIN_POOL_BUMP_PERCENT over `previous`: a pool may take it. */
  replaces: boolean;
}

/**
 * Replacement fees: `previous` raised by `bumpPercent`, or the chain's current fees when higher, at most the cap.
 * `replaces` false means the cap leaves no room for a valid replacement.
 */
export function bumpFees(previous: Fees, current: Fees, bumpPercent: bigint, cap: bigint | undefined): Bump {
  const up = (value: bigint) => (value * (100n + bumpPercent)) / 100n + 1n;
  const enough = (next: bigint, before: bigint) => next * 100n >= before * (100n + MIN_POOL_BUMP_PERCENT);
  if (previous.type === "eip1559" && current.type === "eip1559") {
    const wantedMax = max(up(previous.maxFeePerGas), current.maxFeePerGas);
    const maxFeePerGas = capAt(wantedMax, cap);
    const maxPriorityFeePerGas = min(
      max(up(previous.maxPriorityFeePerGas), current.maxPriorityFeePerGas),
      maxFeePerGas,
    );
    return {
      fees: { type: "eip1559", maxFeePerGas, maxPriorityFeePerGas },
      capped: maxFeePerGas < wantedMax,
      replaces:
        enough(maxFeePerGas, previous.maxFeePerGas) &&
        enough(maxPriorityFeePerGas, previous.maxPriorityFeePerGas),
    };
  }
  if (previous.type === "legacy" && current.type === "legacy") {
    const wanted = max(up(previous.gasPrice), current.gasPrice);
    const gasPrice = capAt(wanted, cap);
    return {
      fees: { type: "legacy", gasPrice },
      capped: gasPrice < wanted,
      replaces: enough(gasPrice, previous.gasPrice),
    };
  }
  // The chain changed pricing (a fork activating EIP-1559): start over from its current fees.
  return { fees: current, capped: false, replaces: true };
}

/** The highest price a transaction with these fees may pay per gas (for comparisons with the cap). */
export function feeCeiling(fees: Fees): bigint {
  return fees.type === "eip1559" ? fees.maxFeePerGas : fees.gasPrice;
}

function capAt(value: bigint, cap: bigint | undefined): bigint {
  return cap !== undefined && value > cap ? cap : value;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
