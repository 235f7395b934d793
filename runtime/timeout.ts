/**
 * Bounds how long a caller waits for a promise. ioredis queues commands while a cluster re-forms, and a
 * MULTI may wait there longer than any command timeout: callers on a request path must not.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  promise.catch(() => undefined); // the loser of the race must not become an unhandled rejection
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
