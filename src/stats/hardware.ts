// Machine facts for the Metric Sender, read from /proc, /sys and Bun's os/fs APIs only: the reference shelled
// out to lscpu, df, free, nvidia-smi, mpstat, iostat, ifstat and curl, which are often absent from slim images
// and cost seconds per record. Every reader tolerates a missing file (another OS, a container without /sys):
// the fact is then null rather than an error.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statfsSync } from "node:fs";
import { arch, cpus, freemem, loadavg, release, totalmem, type, uptime } from "node:os";

export interface HardwareProfile {
  cpu: { model: string | null; cores: number; arch: string };
  memory: { total_bytes: number };
  disk: { path: string; total_bytes: number | null; free_bytes: number | null };
  gpu: { count: number; models: string[] };
  kernel: { type: string; release: string };
}

export interface Utilization {
  /** Percent of all CPUs busy since the previous sample (since boot for the first). */
  cpu: number | null;
  memory: number | null;
  disk: number | null;
  /** Average busy percent of the GPUs that report it in sysfs (amdgpu); null when none does. */
  gpu: number | null;
  load: [number, number, number];
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

const round1 = (value: number) => Math.round(value * 10) / 10;

/**
 * A stable id for this node without asking the internet for its public IP (the reference hashed
 * "<machine-id>_<public ip>"): the machine id with the REST port, so two nodes on one host differ. Without a
 * machine id, a random id per start, as the reference.
 */
export function machineUid(port: number): string {
  const machineId = (readText("/etc/machine-id") ?? readText("/var/lib/dbus/machine-id"))?.trim();
  if (!machineId) return crypto.randomUUID().replaceAll("-", "");
  return createHash("sha256").update(`${machineId}_${port}\n`).digest("hex");
}

function diskSpace(path: string): { total: number; free: number } | undefined {
  try {
    const fs = statfsSync(path);
    return { total: fs.blocks * fs.bsize, free: fs.bavail * fs.bsize };
  } catch {
    return undefined;
  }
}

/** NVIDIA's driver lists each GPU under /proc/driver/nvidia/gpus/<bus id>/information ("Model: …"). */
function gpuModels(): string[] {
  const root = "/proc/driver/nvidia/gpus";
  const nvidia = listDir(root).flatMap((bus) => {
    const model = /^Model:\s*(.+)$/m.exec(readText(`${root}/${bus}/information`) ?? "")?.[1]?.trim();
    return model ? [model] : [];
  });
  if (nvidia.length > 0) return nvidia;
  // Other vendors: one entry per DRM card with a PCI device (vendor:device ids; no name database here).
  return drmCards().flatMap((card) => {
    const vendor = readText(`/sys/class/drm/${card}/device/vendor`)?.trim();
    const device = readText(`/sys/class/drm/${card}/device/device`)?.trim();
    return vendor && device ? [`pci ${vendor}:${device}`] : [];
  });
}

function drmCards(): string[] {
  return listDir("/sys/class/drm").filter((name) => /^card\d+$/.test(name));
}

export function hardwareProfile(diskPath: string): HardwareProfile {
  const processors = cpus();
  const models = gpuModels();
  const disk = diskSpace(diskPath);
  return {
    cpu: { model: processors[0]?.model?.trim() || null, cores: processors.length, arch: arch() },
    memory: { total_bytes: totalmem() },
    disk: { path: diskPath, total_bytes: disk?.total ?? null, free_bytes: disk?.free ?? null },
    gpu: { count: models.length, models },
    kernel: { type: type(), release: release() },
  };
}

/** Busy and total jiffies over all CPUs, from the first line of /proc/stat (or os.cpus() elsewhere). */
function cpuTimes(): { busy: number; total: number } {
  const line = readText("/proc/stat")?.split("\n", 1)[0];
  if (line?.startsWith("cpu ")) {
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, n) => sum + n, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  }
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const sum = times.user + times.nice + times.sys + times.idle + times.irq;
    total += sum;
    busy += sum - times.idle;
  }
  return { busy, total };
}

/** Used memory in percent: MemAvailable (what the kernel can hand out) when known, else os.freemem(). */
function memoryPercent(): number | null {
  const info = readText("/proc/meminfo") ?? "";
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(info)?.[1] ?? Number.NaN);
  const total = field("MemTotal");
  const available = field("MemAvailable");
  if (total > 0 && Number.isFinite(available)) return round1(100 * (1 - available / total));
  const osTotal = totalmem();
  return osTotal > 0 ? round1(100 * (1 - freemem() / osTotal)) : null;
}

function gpuPercent(): number | null {
  const values = drmCards().flatMap((card) => {
    const value = Number(readText(`/sys/class/drm/${card}/device/gpu_busy_percent`)?.trim());
    return Number.isFinite(value) ? [value] : [];
  });
  return values.length === 0 ? null : round1(values.reduce((sum, n) => sum + n, 0) / values.length);
}

/** Samples utilisation; CPU is measured between consecutive calls. */
export function createUtilizationSampler(diskPath: string): () => Utilization {
  let previous = { busy: 0, total: 0 };
  return () => {
    const current = cpuTimes();
    const total = current.total - previous.total;
    const cpu = total > 0 ? round1((100 * (current.busy - previous.busy)) / total) : null;
    previous = current;
    const disk = diskSpace(diskPath);
    const [one = 0, five = 0, fifteen = 0] = loadavg();
    return {
      cpu,
      memory: memoryPercent(),
      disk: disk && disk.total > 0 ? round1(100 * (1 - disk.free / disk.total)) : null,
      gpu: gpuPercent(),
      load: [round1(one), round1(five), round1(fifteen)],
    };
  };
}

/** Seconds the machine has been up (the reference sent `uptime -p` text). */
export function systemUptimeSeconds(): number {
  return Math.round(uptime());
}
