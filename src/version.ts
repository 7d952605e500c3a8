// The version has one source: package.json. build.ts embeds it (and the git commit) with `define`; running from
// source reads package.json and reports the commit as "source".
import pkg from "../package.json" with { type: "json" };

declare const INFERNET_NODE_VERSION: string | undefined;
declare const INFERNET_NODE_COMMIT: string | undefined;

/** Our own release version. */
export const NODE_VERSION: string =
  typeof INFERNET_NODE_VERSION === "string" ? INFERNET_NODE_VERSION : `${pkg.version}-dev`;

/** The git commit the binary was built from (short hash, `-dirty` when the tree had changes), or "source". */
export const NODE_COMMIT: string = typeof INFERNET_NODE_COMMIT === "string" ? INFERNET_NODE_COMMIT : "source";

/** The reference version this node is a drop-in for; what /info reports as `version` for client compatibility. */
export const COMPAT_VERSION = "1.4.0";
