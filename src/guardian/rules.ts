// The per-container restriction table the Guardian checks against, built once from the config. Address lists
// and token keys are compared case-insensitively (the reference compared tokens case-sensitively: a bug).
import type { ContainerConfig } from "../config/schema.ts";
import { createIpMatcher } from "../lib/ip.ts";

export interface ContainerRule {
  id: string;
  external: boolean;
  generatesProofs: boolean;
  /** Empty allowed_ips admits every IP. */
  ipAllowed(ip: string): boolean;
  /** Empty allowed_addresses admits every subscription owner. */
  addressAllowed(address: string): boolean;
  /** Empty allowed_delegate_addresses admits every delegated-subscription owner. */
  delegateAllowed(address: string): boolean;
  /** Lower-cased token address → minimum amount; empty admits any token, free included. */
  acceptedPayments: ReadonlyMap<string, bigint>;
}

export type RuleTable = ReadonlyMap<string, ContainerRule>;

function listMatcher(entries: readonly string[]): (value: string) => boolean {
  if (entries.length === 0) return () => true;
  const set = new Set(entries.map((entry) => entry.toLowerCase()));
  return (value) => set.has(value.toLowerCase());
}

export function buildRuleTable(containers: readonly ContainerConfig[]): RuleTable {
  const table = new Map<string, ContainerRule>();
  for (const container of containers) {
    const ipMatch = container.allowed_ips.length === 0 ? () => true : createIpMatcher(container.allowed_ips);
    table.set(container.id, {
      id: container.id,
      external: container.external,
      generatesProofs: container.generates_proofs,
      ipAllowed: ipMatch,
      addressAllowed: listMatcher(container.allowed_addresses),
      delegateAllowed: listMatcher(container.allowed_delegate_addresses),
      acceptedPayments: new Map(
        Object.entries(container.accepted_payments).map(([token, min]) => [token.toLowerCase(), min]),
      ),
    });
  }
  return table;
}
