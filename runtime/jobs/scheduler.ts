/**
 * The periodic-task scheduler (Celery beat's job), with two guarantees beat does not give:
 * - exactly one firing per slot, even with two scheduler processes: a slot is claimed by inserting its
 *   row in `scheduler_runs` inside the transaction that sends the task, so the primary key lets one
 *   process win and a failed send releases the slot for the next tick;
 * - no double firing after a restart, and no silent loss: the ledger is in PostgreSQL, and on start the
 *   latest slot missed while nothing ran (within `catchUpMs`) is fired once.
 * Cron expressions (croner, seconds optional) are read in each schedule's time zone.
 */
import { Cron } from "croner";
import type pg from "pg";

export interface ScheduleEntry {
  /** Unique name; the ledger key. */
  readonly name: string;
  /** Cron expression, e.g. `0 0 * * *` (midnight) or `0 2 * * 0` (Sunday 02:00). */
  readonly cron: string;
  /** IANA time zone the expression is read in. @default "UTC" */
  readonly timezone?: string;
  readonly task: string;
  readonly args?: readonly unknown[];
  readonly kwargs?: Readonly<Record<string, unknown>>;
}

/** What the scheduler needs of a producer (TaskProducer fits). */
export interface TaskSender {
  send(name: string, args?: readonly unknown[], kwargs?: Readonly<Record<string, unknown>>): Promise<{ id: string }>;
}

export interface SchedulerOptions {
  readonly entries: readonly ScheduleEntry[];
  readonly sender: TaskSender;
  /** A pool on the primary (the ledger). */
  readonly db: pg.Pool;
  /** Names this process in the ledger. */
  readonly hostname: string;
  /** @default () => new Date() */
  readonly clock?: () => Date;
  /** @default 1000 */
  readonly tickMs?: number;
  /** How far back a slot missed while no scheduler ran is still fired (once). @default 1 hour */
  readonly catchUpMs?: number;
  readonly log?: (line: string) => void;
  /** Called after every tick (the health heartbeat). */
  readonly onTick?: () => void;
}

interface Planned {
  readonly entry: ScheduleEntry;
  readonly cron: Cron;
  next: Date | null;
}

export class Scheduler {
  private readonly planned: Planned[];
  private readonly clock: () => Date;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  fired = 0;

  constructor(private readonly o: SchedulerOptions) {
    const names = new Set<string>();
    this.planned = o.entries.map((entry) => {
      if (names.has(entry.name)) throw new Error(`schedule ${entry.name}: the name is used twice`);
      names.add(entry.name);
      let cron: Cron;
      try {
        cron = new Cron(entry.cron, { timezone: entry.timezone ?? "UTC", paused: true });
      } catch (e) {
        throw new Error(`schedule ${entry.name}: cron "${entry.cron}" is invalid: ${(e as Error).message}`);
      }
      return { entry, cron, next: null };
    });
    this.clock = o.clock ?? (() => new Date());
  }

  /** Plans each schedule from its last fired slot (or the catch-up window), then ticks every tickMs. */
  async start(): Promise<void> {
    const now = this.clock();
    for (const p of this.planned) {
      const { rows } = await this.o.db.query<{ last: Date | null }>("SELECT max(slot) AS last FROM scheduler_runs WHERE schedule = $1", [p.entry.name]);
      const floor = new Date(now.getTime() - (this.o.catchUpMs ?? 3_600_000));
      const from = rows[0]?.last && rows[0].last > floor ? rows[0].last : floor;
      p.next = p.cron.nextRun(from);
    }
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.o.tickMs ?? 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
  }

  /** Fires every slot that is due (only the latest, if several were missed). Exposed for tests. */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    const run = this.runTick().finally(() => {
      if (this.ticking === run) this.ticking = undefined;
    });
    this.ticking = run;
    return run;
  }

  private async runTick(): Promise<void> {
    const now = this.clock();
    for (const p of this.planned) {
      if (!p.next || p.next > now) continue;
      let slot = p.next;
      for (let later = p.cron.nextRun(slot); later && later <= now; later = p.cron.nextRun(later)) slot = later;
      if (await this.fire(p.entry, slot)) p.next = p.cron.nextRun(slot);
    }
    this.o.onTick?.();
  }

  /** Claims the slot and sends the task in one transaction; false if the send failed (retried next tick). */
  private async fire(entry: ScheduleEntry, slot: Date): Promise<boolean> {
    const client = await this.o.db.connect();
    try {
      await client.query("BEGIN");
      const claim = await client.query(
        "INSERT INTO scheduler_runs (schedule, slot, fired_by, task_id) VALUES ($1, $2, $3, gen_random_uuid()) ON CONFLICT DO NOTHING RETURNING task_id",
        [entry.name, slot, this.o.hostname],
      );
      if (claim.rowCount === 0) {
        await client.query("ROLLBACK");
        return true; // another scheduler fired it
      }
      const sent = await this.o.sender.send(entry.task, entry.args ?? [], { ...entry.kwargs, scheduled_slot: slot.toISOString() });
      await client.query("UPDATE scheduler_runs SET task_id = $3 WHERE schedule = $1 AND slot = $2", [entry.name, slot, sent.id]);
      await client.query("COMMIT");
      this.fired++;
      this.o.log?.(`${entry.name}: fired ${entry.task} for ${slot.toISOString()} (task ${sent.id})`);
      return true;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      this.o.log?.(`${entry.name}: slot ${slot.toISOString()} not fired, will retry: ${(error as Error).message}`);
      return false;
    } finally {
      client.release();
    }
  }
}
