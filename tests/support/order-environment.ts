/**
 * Test support: a broker of the file's own, a migrated database with 100 buyers and a product, and the
 * service, a worker and the scheduler as processes on them (what `make dev` runs) — the setting of the
 * end-to-end tests that break the broker under order load. `teardown` stops every process by its PID
 * and removes what was made, also after a failure.
 */
import { rmSync, writeFileSync } from "node:fs";
import pg from "pg";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { appsStatus, type LocalAppsOptions, startApps, stopApps } from "../../scripts/local-stack/apps";
import { isAlive } from "../../scripts/local-stack/process";
import { type LocalRabbitOptions, startRabbit, stopRabbit } from "../../scripts/local-stack/rabbitmq";
import { createMigratedDatabase } from "./databases";

export interface OrderEnvironment {
  readonly outputs: StackOutputs;
  readonly db: pg.Client;
  readonly userIds: number[];
  readonly pids: number[];
  teardown(): Promise<void>;
}

/** `buyers`: the e-mail prefix of the 100 buyers (buyer i is `<buyers><i>@test.com`); `sku`: the product's. */
export async function startOrderEnvironment(o: { name: string; dir: string; rabbit: LocalRabbitOptions; apps: LocalAppsOptions; buyers: string; sku: string }): Promise<OrderEnvironment> {
  const base = await loadStackOutputs();
  const created = await createMigratedDatabase(base, `shopfds_${o.name}_${process.pid}`);
  let db: pg.Client | undefined;
  let pids: number[] = [];
  const teardown = async () => {
    await stopApps(o.apps).catch(() => undefined);
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    await stopRabbit(o.rabbit).catch(() => undefined);
    await db?.end().catch(() => undefined);
    await created.drop();
    // KEEP_TEST_DIR=1 keeps the processes' logs (apps/*.log) and the broker's for a look after a failure.
    if (!process.env.KEEP_TEST_DIR) rmSync(o.dir, { recursive: true, force: true });
  };
  try {
    const outputs: StackOutputs = { ...base, postgres: created.postgres, rabbitmq: await startRabbit(o.rabbit) };
    writeFileSync(o.apps.outputsFile, JSON.stringify(outputs), { mode: 0o600 });
    db = new pg.Client({ ...outputs.postgres.primary, database: outputs.postgres.database, user: outputs.postgres.user, password: outputs.postgres.password });
    await db.connect();
    // Many buyers and addresses: the FDS velocity rule (5 per user or IP in 10 minutes) must not block the load.
    const userIds = (await db.query("INSERT INTO users (email, password_hash, name) SELECT $1 || g || '@test.com', 'x', 'Buyer ' || g FROM generate_series(1, 100) g RETURNING id", [o.buyers])).rows.map((r) => Number(r.id));
    await db.query("INSERT INTO products (sku, name, category, price, stock) VALUES ($1, 'Cable', 'pc', 9900, 100000)", [o.sku]);
    await startApps(o.apps, outputs);
    pids = appsStatus(o.apps).map((s) => s.pid!).filter(Boolean);
    return { outputs, db, userIds, pids, teardown };
  } catch (error) {
    await teardown();
    throw error;
  }
}

/** Order `i` of the load: buyer and address in turn (198.18.x.y, none repeated within 25 000), one cable. */
export function postOrder(serviceUrl: string, env: Pick<OrderEnvironment, "userIds">, buyers: string, i: number): Promise<Response> {
  const n = i % env.userIds.length;
  const order = { userId: env.userIds[n], items: [{ productId: 1, quantity: 1 }], ip: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`, email: `${buyers}${n + 1}@test.com` };
  return fetch(`${serviceUrl}/orders`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(order) });
}
