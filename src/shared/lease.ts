// The right to send transactions for a wallet, when several node processes share one (a hot standby). The
// holder checks it right before every broadcast; a node without it tracks and serves REST but sends nothing.
export interface SendLease {
  /**
   * True while this process holds the lease by its own monotonic clock, with a safety margin: a process that
   * was paused past the lease's expiry sees false on waking, before it has talked to anyone.
   */
  held(): boolean;
  /** "held", or "standby: <who holds it>", for /health and logs. */
  describe(): string;
}
