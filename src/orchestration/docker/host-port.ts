// Host port availability, checked before a container is started so that "port taken" is reported with the
// port and address rather than as Docker's "driver failed programming external connectivity" text.

/** Undefined when `address:port` can be bound on this host now, else the reason. */
export function hostPortProblem(address: string, port: number): string | undefined {
  try {
    const listener = Bun.listen({ hostname: address, port, socket: { data() {} } });
    listener.stop(true);
    return undefined;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "EADDRINUSE") return `port ${port} on ${address} is already in use on this host`;
    if (code === "EADDRNOTAVAIL") return `address ${address} does not belong to this host`;
    // Anything else (e.g. EACCES for a privileged port): let Docker try, its own error will be reported.
    return undefined;
  }
}

/** True when a Docker start error means the host port is taken. */
export function isPortConflict(message: string): boolean {
  return /port is already allocated|address already in use/i.test(message);
}
