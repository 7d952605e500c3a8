// A Redis connection for requests that are worthless late (the chain lease, the delegated journal): no offline
// queue and no retry per request, so a command while Redis is down fails at once and the caller decides
// (try again next step, or refuse the request with a 503); the connection itself keeps reconnecting.
import Redis from "ioredis";

export interface RedisEndpointOptions {
  host: string;
  port: number;
  password?: string | null;
  db: number;
}

export function failFastRedis(
  endpoint: RedisEndpointOptions,
  options: { connectionName: string; commandTimeoutMs: number; reconnectMaxMs: number },
): Redis {
  return new Redis({
    host: endpoint.host,
    port: endpoint.port,
    db: endpoint.db,
    ...(endpoint.password ? { password: endpoint.password } : {}),
    connectionName: options.connectionName,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs,
    retryStrategy: (times) => Math.min(100 * times, options.reconnectMaxMs),
    lazyConnect: true,
  });
}
