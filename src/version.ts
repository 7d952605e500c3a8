// Replaced at build time by build.ts (`define`); running from source reports the package version.
declare const INFERNET_NODE_VERSION: string | undefined;

/** Our own release version. */
export const NODE_VERSION: string =
  typeof INFERNET_NODE_VERSION === "string" ? INFERNET_NODE_VERSION : "0.1.0-dev";

/** The reference version this node is a drop-in for; what /info reports as `version` for client compatibility. */
export const COMPAT_VERSION = "1.4.0";
