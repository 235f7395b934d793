/**
 * Read-your-writes beyond one scope, on the test stack's real primary and replica with the replica's
 * replay paused (so it cannot have the write): a task sent after a write reads it (the producer carries
 * the write location, the worker reads after it); a client's next request reads it on Fastify and on
 * Express (the answer carries the location in a header and a cookie; the next request brings it back);
 * without the location the same reads go to the paused replica and miss the row, which is what makes
 * the other answers mean something.
 */
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { createConnection, createServer, type Server as TcpServer, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import express from "express";
import Fastify, { type FastifyInstance } from "fastify";
import type { Client } from "pg";
import { Database, parseWriteLocation } from "../../runtime/db/router";
import { HealthMonitor } from "../../runtime/health/health";
import { shopfdsExpress } from "../../runtime/http/express";
import { shopfdsFastify } from "../../runtime/http/fastify";
import { WRITE_LOCATION_COOKIE, WRITE_LOCATION_HTTP_HEADER } from "../../runtime/http/write-location";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import { createLogger } from "../../runtime/observability/logger";
import { ServiceMetrics } from "../../runtime/observability/metrics";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { superuserClient } from "../../scripts/local-stack/postgres";
import { postgresOptions, profile } from "../../scripts/local-stack/stack";
import { until } from "../support/databases";

const local = postgresOptions(profile("test"));
const TABLE = `ryw_${process.pid}`;
const QUEUE = `t${process.pid}.ryw`;
let outputs: StackOutputs;
let db: Database;
let replicaSu: Client;
let producer: TaskProducer;
let worker: Worker;
let fastify: FastifyInstance;
let expressServer: Server;
const bases: Record<string, string> = {};
const seenByTask = new Map<string, { found: boolean; onReplica: boolean }>();

const read = (id: number) => db.query(`SELECT count(*)::int AS n, pg_is_in_recovery() AS replica FROM ${TABLE} WHERE id = $1`, [id]).then((r) => ({ found: r.rows[0].n === 1, onReplica: r.rows[0].replica as boolean }));
const write = (note: string) => db.transaction(async (c) => Number((await c.query(`INSERT INTO ${TABLE} (note) VALUES ($1) RETURNING id`, [note])).rows[0].id));
/** One statement, no transaction around it (the order path's kind of write). */
const writePlain = (note: string, on: Database = db) => on.query(`INSERT INTO ${TABLE} (note) VALUES ($1) RETURNING id`, [note]).then((r) => Number(r.rows[0].id));

/** Replay paused on the replica for `fn`, resumed after even when it throws. */
async function paused<T>(fn: () => Promise<T>): Promise<T> {
  await replicaSu.query("SELECT pg_wal_replay_pause()");
  try {
    return await fn();
  } finally {
    await replicaSu.query("SELECT pg_wal_replay_resume()");
  }
}

before(async () => {
  outputs = await loadStackOutputs();
  db = await Database.connect({ ...outputs.postgres, lagCheckIntervalMs: 100 });
  await db.query(`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, note text)`);
  replicaSu = await superuserClient(local, "replica-1", local.database);
  replicaSu.on("error", () => {});
  await until("table on replica", 5000, async () => (await replicaSu.query("SELECT to_regclass($1) IS NOT NULL AS ok", [TABLE])).rows[0].ok);
  // The producer asks the request's scope where its writes stand; the worker reads after it.
  producer = await TaskProducer.connect(outputs.rabbitmq.url, { writeLocation: () => db.writeLocation() });
  worker = new Worker({ url: outputs.rabbitmq.url, queue: QUEUE, hostname: `${QUEUE}@test`, readAfter: (after, run) => db.withSession(run, { after }) });
  worker.register(`${QUEUE}.read`, async (args) => {
    seenByTask.set(String(args[1]), await read(Number(args[0])));
    return "ok";
  });
  await worker.start();

  const log = createLogger({ service: "ryw", environment: "dev", destination: { write: () => true } as never });
  const health = new HealthMonitor([]);
  const metrics = new ServiceMetrics({ service: "ryw", defaultMetrics: false });
  fastify = Fastify();
  await fastify.register(shopfdsFastify, { health, metrics, log, db });
  fastify.post("/notes", async () => ({ id: await write("fastify") }));
  fastify.post("/plain-notes", async () => ({ id: await writePlain("fastify") }));
  fastify.get("/notes/:id", async (request) => read(Number((request.params as { id: string }).id)));
  await fastify.listen({ port: 0, host: "127.0.0.1" });
  bases.fastify = `http://127.0.0.1:${(fastify.server.address() as { port: number }).port}`;

  const app = express();
  app.use(shopfdsExpress({ health, metrics, log, db }));
  app.post("/notes", (_req, res, next) => void write("express").then((id) => res.json({ id }), next));
  app.post("/plain-notes", (_req, res, next) => void writePlain("express").then((id) => res.json({ id }), next));
  app.get("/notes/:id", (req, res, next) => void read(Number(req.params.id)).then((r) => res.json(r), next));
  await new Promise<void>((r) => (expressServer = app.listen(0, "127.0.0.1", () => r())));
  bases.express = `http://127.0.0.1:${(expressServer.address() as { port: number }).port}`;
});

after(async () => {
  await replicaSu?.query("SELECT pg_wal_replay_resume()").catch(() => undefined);
  await fastify?.close();
  await new Promise((r) => (expressServer ? expressServer.close(r) : r(undefined)));
  await worker?.stop().catch(() => undefined);
  await producer?.close();
  await replicaSu?.end().catch(() => undefined);
  await db?.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => undefined);
  await db?.close();
});

describe("read-your-writes across tasks", () => {
  it("a task sent right after a write reads it, with replay paused on the replica; one sent without the location misses it", async () => {
    await paused(async () => {
      const { id, location } = await db.withSession(async (session) => {
        const written = await write("task");
        await producer.send(`${QUEUE}.read`, [written, "carried"], {}, { queue: QUEUE });
        return { id: written, location: await session.writeLocation() };
      });
      assert.ok(parseWriteLocation(location) !== undefined, `a location (${location})`);
      // The same write, read by a task that carries nothing: the paused replica answers, without the row.
      await producer.send(`${QUEUE}.read`, [id, "bare"], {}, { queue: QUEUE });
      await until("both tasks ran", 10_000, async () => seenByTask.size === 2);
    });
    assert.deepEqual(seenByTask.get("carried"), { found: true, onReplica: false }, "read after the location: the primary, which has it");
    assert.deepEqual(seenByTask.get("bare"), { found: false, onReplica: true }, "no location: the paused replica, which has not");
  });

  it("the location is PostgreSQL's LSN text; anything else carried is ignored", async () => {
    assert.equal(parseWriteLocation("16/B374D848"), (0x16n << 32n) + 0xb374d848n);
    for (const junk of ["", "16/", "x/1", "1/2/3", 5, undefined, "1/123456789"]) assert.equal(parseWriteLocation(junk), undefined, String(junk));
    // A scope given junk reads as a scope given nothing.
    assert.equal(await db.withSession(async (s) => s.writeLocation(), { after: "not-a-location" }), undefined);
    assert.equal(await db.withSession(async (s) => s.writeLocation(), { after: "0/16B3740" }), "0/16B3740", "a carried location is passed on");
  });
});

for (const framework of ["fastify", "express"] as const) {
  describe(`read-your-writes across requests (${framework})`, () => {
    it("the next request that brings the location back (header, or cookie) reads the write with replay paused; one without reads the replica", async () => {
      const base = bases[framework]!;
      // A transaction (its commit says where it stands) and a single statement (its position pipelined behind it).
      for (const posting of ["/notes", "/plain-notes"]) await paused(async () => {
        const posted = await fetch(`${base}${posting}`, { method: "POST" });
        assert.equal(posted.status, 200);
        const { id } = (await posted.json()) as { id: number };
        const location = posted.headers.get(WRITE_LOCATION_HTTP_HEADER);
        assert.ok(parseWriteLocation(location) !== undefined, `header ${WRITE_LOCATION_HTTP_HEADER}: ${location}`);
        const cookie = posted.headers.getSetCookie().find((c) => c.startsWith(`${WRITE_LOCATION_COOKIE}=`));
        assert.match(cookie ?? "", /; Max-Age=60; Path=\/; HttpOnly; SameSite=Lax$/);
        const get = (headers: Record<string, string>) => fetch(`${base}/notes/${id}`, { headers }).then((r) => r.json());
        assert.deepEqual(await get({ [WRITE_LOCATION_HTTP_HEADER]: location! }), { found: true, onReplica: false });
        assert.deepEqual(await get({ cookie: `other=1; ${cookie!.split(";")[0]}` }), { found: true, onReplica: false }, "the cookie, as a browser sends it");
        assert.deepEqual(await get({}), { found: false, onReplica: true }, "nothing carried: the paused replica");
        // A read passes a carried location on (the client's next request still needs it); a read that
        // carried nothing and wrote nothing answers none.
        const headerOf = async (headers: Record<string, string>) => (await fetch(`${base}/notes/${id}`, { headers })).headers.get(WRITE_LOCATION_HTTP_HEADER);
        assert.equal(await headerOf({ [WRITE_LOCATION_HTTP_HEADER]: location! }), location);
        assert.equal(await headerOf({}), null);
      });
    });
  });
}

describe("a single statement's write location (locateWrites)", () => {
  let proxy: TcpServer;
  let viaProxy: Database;
  /** What the router wrote to the primary, chunk by chunk, while counting. */
  let counting = false;
  let chunks = 0;
  const sockets = new Set<Socket>();

  before(async () => {
    // A TCP relay in front of the primary that counts what the router writes to it.
    proxy = createServer((client) => {
      const server = createConnection(outputs.postgres.primary.port, outputs.postgres.primary.host);
      for (const s of [client, server]) {
        sockets.add(s);
        s.on("error", () => undefined).on("close", () => (client.destroy(), server.destroy()));
      }
      client.on("data", (d) => {
        if (counting) chunks++;
        server.write(d);
      });
      server.pipe(client);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    viaProxy = await Database.connect({ ...outputs.postgres, primary: { host: "127.0.0.1", port: (proxy.address() as { port: number }).port }, lagCheckIntervalMs: 3_600_000 });
    await viaProxy.query("SELECT 1", [], { target: "primary" }); // a connection open and idle in the pool
  });

  after(async () => {
    await viaProxy?.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => (proxy ? proxy.close(r) : r(undefined)));
  });

  const scope = (locateWrites: boolean) =>
    viaProxy.withSession(
      async (session) => {
        chunks = 0;
        counting = true;
        const id = await writePlain("located", viaProxy);
        const location = await session.writeLocation();
        counting = false;
        return { id, location, writes: chunks };
      },
      { locateWrites },
    );

  it("comes back with the write, both sent in one socket write; without locateWrites it is a question of its own after the write", async () => {
    await paused(async () => {
      const located = await scope(true);
      assert.equal(located.writes, 1, "the statement and the position question in one write to the primary");
      const asked = await scope(false);
      assert.equal(asked.writes, 2, "the statement, then the position question");
      for (const { id, location } of [located, asked]) {
        assert.ok(parseWriteLocation(location) !== undefined, `a location (${location})`);
        // The location is at or past the commit: a read after it sees the row (on the primary: replay is paused).
        assert.deepEqual(await db.withSession(() => read(id), { after: location! }), { found: true, onReplica: false });
        assert.deepEqual(await read(id), { found: false, onReplica: true }, "without it: the paused replica, which has not");
      }
    });
  });
});
