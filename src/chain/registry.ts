// Registry: resolves the addresses of the other Infernet contracts once at start-up (they are immutables in
// the Registry's constructor, so they never change). Unlike the reference, a wrong registry_address fails with
// a sentence an operator can act on instead of a web3 traceback.
import { type Address, getAddress } from "viem";
import { StartupError } from "../lib/errors.ts";
import { registryAbi } from "./abi/registry.ts";
import type { ChainClient } from "./rpc.ts";
import { isRetryableRpcError, rpcErrorText } from "./rpc.ts";

export interface RegistryAddresses {
  registry: Address;
  coordinator: Address;
  reader: Address;
  walletFactory: Address;
  inbox: Address;
  fee: Address;
}

/**
 * Reads COORDINATOR(), READER(), WALLET_FACTORY(), INBOX() and FEE() at one block. Throws StartupError when the
 * address holds no contract or the getters revert; transport failures are rethrown as they are (retryable).
 */
export async function resolveRegistry(
  client: ChainClient,
  registryAddress: string,
): Promise<RegistryAddresses> {
  const registry = getAddress(registryAddress);
  const noRegistry = (why: string) =>
    new StartupError(`chain.registry_address ${registry} holds no Infernet Registry (${why})`, {
      meta: { registry_address: registry },
    });

  const blockNumber = await client.getBlockNumber();
  const code = await client.getCode({ address: registry, blockNumber });
  if (!code || code === "0x") throw noRegistry(`no contract code at this address on block ${blockNumber}`);

  const read = async (functionName: "COORDINATOR" | "READER" | "WALLET_FACTORY" | "INBOX" | "FEE") => {
    try {
      const address = await client.readContract({
        address: registry,
        abi: registryAbi,
        functionName,
        blockNumber,
      });
      if (/^0x0{40}$/i.test(address)) throw noRegistry(`${functionName}() returned the zero address`);
      return address;
    } catch (error) {
      if (error instanceof StartupError || isRetryableRpcError(error)) throw error;
      throw noRegistry(`${functionName}() failed: ${rpcErrorText(error)}`);
    }
  };

  return {
    registry,
    coordinator: await read("COORDINATOR"),
    reader: await read("READER"),
    walletFactory: await read("WALLET_FACTORY"),
    inbox: await read("INBOX"),
    fee: await read("FEE"),
  };
}
