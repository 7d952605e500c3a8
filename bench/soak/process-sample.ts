// What a leak would show in /proc for one process: resident memory, open file descriptors, sockets among
// them, and the TCP connections it owns (its socket inodes looked up in the kernel's TCP tables), split into
// inbound (to `serverPort`, the REST clients) and outbound (Redis, the RPC, containers, Docker over TCP).
// Linux only; a process that is gone reads as zeros.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { residentKb } from "../../test/fixtures/proc-status.ts";

export interface ProcessSample {
  rssKb: number;
  fds: number;
  /** fds that are sockets (TCP, UDP, unix). */
  sockets: number;
  /** TCP connections (any state but LISTEN) to the server port. */
  tcpIn: number;
  /** TCP connections (any state but LISTEN) the process opened. */
  tcpOut: number;
}

/** Socket inodes among the open fds of `pid`, and the fd count. */
function openFds(pid: number): { fds: number; socketInodes: Set<string> } {
  const socketInodes = new Set<string>();
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return { fds: 0, socketInodes };
  }
  for (const name of names) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${name}`));
      if (match?.[1]) socketInodes.add(match[1]);
    } catch {
      // closed between readdir and readlink
    }
  }
  return { fds: names.length, socketInodes };
}

const TCP_LISTEN = "0A";

interface TcpRow {
  localPort: number;
  remotePort: number;
  state: string;
  inode: string;
}

const portOf = (address: string | undefined) => Number.parseInt(address?.split(":")[1] ?? "0", 16);

/** Rows of /proc/<pid>/net/tcp{,6} (the process's network namespace): ports, state, inode. */
function tcpRows(pid: number): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const table of ["tcp", "tcp6"]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [, local, remote, state, , , , , , inode] = fields;
      if (!local || !state || !inode) continue;
      rows.push({ localPort: portOf(local), remotePort: portOf(remote), state, inode });
    }
  }
  return rows;
}

export function sampleProcess(pid: number, serverPort: number): ProcessSample {
  const { fds, socketInodes } = openFds(pid);
  let tcpIn = 0;
  let tcpOut = 0;
  for (const row of tcpRows(pid)) {
    if (row.state === TCP_LISTEN || !socketInodes.has(row.inode)) continue;
    if (row.localPort === serverPort) tcpIn++;
    else tcpOut++;
  }
  return { rssKb: residentKb(pid) ?? 0, fds, sockets: socketInodes.size, tcpIn, tcpOut };
}

/**
 * The process's TCP connections (not LISTEN) counted by peer: `peers` names remote ports (e.g. redis, rpc,
 * each container); anything else is counted under its port number. Key "in" is connections to `serverPort`.
 */
export function tcpByPeer(
  pid: number,
  serverPort: number,
  peers: Record<string, number>,
): Record<string, number> {
  const { socketInodes } = openFds(pid);
  const names = new Map(Object.entries(peers).map(([name, port]) => [port, name]));
  const counts: Record<string, number> = {};
  for (const row of tcpRows(pid)) {
    if (row.state === TCP_LISTEN || !socketInodes.has(row.inode)) continue;
    const key = row.localPort === serverPort ? "in" : (names.get(row.remotePort) ?? String(row.remotePort));
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
