// Fee arithmetic for first sends and replacements, table-driven: the bump, the chain's current price when
// higher, the cap, and whether a pool (10% price bump) would take the replacement at all.
import { describe, expect, test } from "bun:test";
import { type Bump, bumpFees, type Fees, initialFees } from "../../../src/chain/tx-fees.ts";

const eip = (maxFeePerGas: bigint, maxPriorityFeePerGas: bigint): Fees => ({
  type: "eip1559",
  maxFeePerGas,
  maxPriorityFeePerGas,
});
const legacy = (gasPrice: bigint): Fees => ({ type: "legacy", gasPrice });

describe("initialFees", () => {
  test("default: 2·baseFee + priority, capped; legacy: the gas price, capped", () => {
    expect(initialFees({ baseFeePerGas: 10n, priorityFee: 2n, gasPrice: undefined }, undefined)).toEqual(
      eip(22n, 2n),
    );
    expect(initialFees({ baseFeePerGas: 10n, priorityFee: 2n, gasPrice: undefined }, 15n)).toEqual(
      eip(15n, 2n),
    );
    expect(initialFees({ baseFeePerGas: 10n, priorityFee: 40n, gasPrice: undefined }, 15n)).toEqual(
      eip(15n, 15n),
    );
    expect(initialFees({ baseFeePerGas: undefined, priorityFee: 0n, gasPrice: 30n }, 25n)).toEqual(
      legacy(25n),
    );
  });
});

describe("bumpFees", () => {
  const cases: Array<{ name: string; previous: Fees; current: Fees; cap?: bigint; bump: Bump }> = [
    {
      name: "default: both fields up by the bump (25%) plus one wei",
      previous: eip(100n, 10n),
      current: eip(50n, 5n),
      bump: { fees: eip(126n, 13n), capped: false, replaces: true },
    },
    {
      name: "behavior: the chain's current fees when higher than the bump",
      previous: eip(100n, 10n),
      current: eip(300n, 20n),
      bump: { fees: eip(300n, 20n), capped: false, replaces: true },
    },
    {
      name: "behavior: capped but still 10% above: sent at the cap",
      previous: eip(100n, 10n),
      current: eip(50n, 5n),
      cap: 112n,
      bump: { fees: eip(112n, 13n), capped: true, replaces: true },
    },
    {
      name: "error: the cap leaves less than the pool's 10%: not a replacement",
      previous: eip(100n, 10n),
      current: eip(50n, 5n),
      cap: 105n,
      bump: { fees: eip(105n, 13n), capped: true, replaces: false },
    },
    {
      name: "error: already at the cap: not a replacement, never above the cap",
      previous: eip(100n, 100n),
      current: eip(500n, 5n),
      cap: 100n,
      bump: { fees: eip(100n, 100n), capped: true, replaces: false },
    },
    {
      name: "behavior: legacy pricing bumps the gas price",
      previous: legacy(100n),
      current: legacy(90n),
      bump: { fees: legacy(126n), capped: false, replaces: true },
    },
    {
      name: "error: legacy at the cap",
      previous: legacy(100n),
      current: legacy(90n),
      cap: 100n,
      bump: { fees: legacy(100n), capped: true, replaces: false },
    },
    {
      name: "behavior: the chain switched pricing: its current fees",
      previous: legacy(100n),
      current: eip(50n, 5n),
      bump: { fees: eip(50n, 5n), capped: false, replaces: true },
    },
  ];
  for (const c of cases) {
    test(c.name, () => expect(bumpFees(c.previous, c.current, 25n, c.cap)).toEqual(c.bump));
  }
});
