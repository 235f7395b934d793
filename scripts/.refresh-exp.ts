import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectRedisCluster } from "../runtime/redis/client";
import { startRedis, stopRedis, type LocalRedisOptions } from "./local-stack/redis";
import { devStackSettings } from "./local-stack/stack";
async function main() {
  const dir = mkdtempSync(path.join(tmpdir(), "refresh-"));
  const local: LocalRedisOptions = { dir, firstPort: 27101, firstBusPort: 27111, nodeTimeoutMs: devStackSettings().redis.nodeTimeoutMs, maxMemory: devStackSettings().redis.maxMemory };
  const outputs = await startRedis(local);
  try {
    for (const interval of [500, 5000, 500, 5000]) {
      const c = connectRedisCluster(outputs, { cluster: { slotsRefreshInterval: interval } });
      await c.set("x", "1");
      const u0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 15000));
      const u = process.cpuUsage(u0);
      console.log(`interval ${interval} ms: ${((u.user + u.system) / 1000 / ((performance.now() - t0) / 1000)).toFixed(2)} ms CPU per second idle (user ${(u.user/1000).toFixed(0)} sys ${(u.system/1000).toFixed(0)} over 15 s)`);
      c.disconnect();
    }
  } finally {
    await stopRedis(local);
    rmSync(dir, { recursive: true, force: true });
  }
}
void main();
