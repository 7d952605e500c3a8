// One fixed wait (a store's write deadline) for many promises at once, with one timer in all instead of one per
// write: thousands of job writes a second each arming and clearing a timer showed up in profiles of the write
// path. The waits all have the same length, so they expire in the order they began.

export interface Deadline {
  /** Resolves true once `work` settles, or false when the deadline passes first. Never rejects. */
  wait(work: Promise<unknown>): Promise<boolean>;
}

interface Waiter {
  at: number;
  expire: () => void;
}

export function createDeadline(ms: number): Deadline {
  /** In start order, so in deadline order; a waiter leaves as soon as its work settles. */
  const waiters = new Set<Waiter>();
  let timer: ReturnType<typeof setTimeout> | undefined;

  function arm(): void {
    timer = undefined;
    const now = performance.now();
    for (const waiter of waiters) {
      if (waiter.at > now) {
        timer = setTimeout(arm, waiter.at - now);
        // A pending deadline must not keep the process alive on its own.
        timer.unref?.();
        return;
      }
      waiters.delete(waiter);
      waiter.expire();
    }
  }

  return {
    wait(work) {
      return new Promise<boolean>((resolve) => {
        const waiter: Waiter = { at: performance.now() + ms, expire: () => resolve(false) };
        waiters.add(waiter);
        if (timer === undefined) arm();
        const settled = () => {
          waiters.delete(waiter);
          resolve(true);
        };
        work.then(settled, settled);
      });
    },
  };
}
