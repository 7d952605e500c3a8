// Host-port de-duplication, as the reference does it at start-up (both modes): a container asking for a port
// that an earlier container already has gets the highest free port counting down from 3999, with a warning.
import type { ContainerConfig } from "./schema.ts";

const AUTO_PORT_START = 3999;

export function assignPorts(containers: readonly ContainerConfig[]): {
  containers: ContainerConfig[];
  warnings: string[];
} {
  const taken = new Set<number>();
  const warnings: string[] = [];
  const out = containers.map((container) => {
    if (!taken.has(container.port)) {
      taken.add(container.port);
      return container;
    }
    let port = AUTO_PORT_START;
    while (taken.has(port) && port > 1) port--;
    taken.add(port);
    warnings.push(
      `Port ${container.port} is already in use. Auto-assigning port ${port} for container '${container.id}'`,
    );
    return { ...container, port };
  });
  return { containers: out, warnings };
}
