/**
 * The result store chords count in: Celery's own database result backend, on the stack's PostgreSQL
 * (`celery_taskmeta`, created by runtime migration 0005 as SQLAlchemy would create it). A Python
 * service that sends or runs chords sets `result_backend = "db+postgresql://…"` to the same database,
 * and both sides read what the other wrote: a row per finished task, its status and its pickled
 * result (SUCCESS: the return value; FAILURE: `{exc_type, exc_message, exc_module}`, Celery's
 * serialised exception), read by `celery.chord_unlock` to know when a chord's header is done.
 *
 * Why this store: Celery's rpc backend, the one the runtime answers to, refuses chords
 * ("The rpc result backend does not support chords"), and its Redis backend cannot run on a Redis
 * Cluster (its keys span slots); PostgreSQL is in every stack and is what Celery documents next.
 */
import { pickle, unpickle } from "./pickle";

export interface RecordedOutcome {
  /** Celery's state: SUCCESS, FAILURE (or what a Python worker wrote: RETRY, REVOKED…). */
  readonly status: string;
  readonly result: unknown;
  readonly traceback?: string | null;
  /** Why `result` could not be read (a Python object rather than plain data). */
  readonly unreadable?: string;
}

/** Where a worker records the outcome of a task in a group and looks up a chord's header. */
export interface TaskResults {
  record(taskId: string, outcome: RecordedOutcome): Promise<void>;
  /** The outcomes recorded for these ids (an id not there has not finished). */
  lookup(ids: readonly string[]): Promise<Map<string, RecordedOutcome>>;
}

/** Anything that runs a statement: the runtime's `Database`, a pg Pool or Client. */
export interface ResultsDatabase {
  query(sql: string, params: unknown[]): Promise<{ rows: any[] }>;
}

/** Celery's `celery_taskmeta` on PostgreSQL (runtime migration 0005). */
export class PostgresTaskResults implements TaskResults {
  constructor(private readonly db: ResultsDatabase) {}

  async record(taskId: string, o: RecordedOutcome): Promise<void> {
    // date_done as SQLAlchemy writes it (datetime.utcnow, no time zone).
    await this.db.query(
      `INSERT INTO celery_taskmeta (task_id, status, result, date_done, traceback) VALUES ($1, $2, $3, now() AT TIME ZONE 'utc', $4)
       ON CONFLICT (task_id) DO UPDATE SET status = EXCLUDED.status, result = EXCLUDED.result, date_done = EXCLUDED.date_done, traceback = EXCLUDED.traceback`,
      [taskId, o.status, pickle(o.result), o.traceback ?? null],
    );
  }

  async lookup(ids: readonly string[]): Promise<Map<string, RecordedOutcome>> {
    const found = new Map<string, RecordedOutcome>();
    if (ids.length === 0) return found;
    const { rows } = await this.db.query("SELECT task_id, status, result, traceback FROM celery_taskmeta WHERE task_id = ANY($1::text[])", [[...ids]]);
    for (const row of rows as { task_id: string; status: string; result: Buffer | null; traceback: string | null }[]) {
      try {
        found.set(row.task_id, { status: row.status, result: row.result ? unpickle(row.result) : null, traceback: row.traceback });
      } catch (e) {
        found.set(row.task_id, { status: row.status, result: null, traceback: row.traceback, unreadable: (e as Error).message });
      }
    }
    return found;
  }

  /** Deletes the rows finished before `olderThanSeconds` ago (Celery's backend_cleanup; result_expires is a day). */
  async purge(olderThanSeconds = 86_400): Promise<number> {
    const { rows } = await this.db.query("DELETE FROM celery_taskmeta WHERE date_done < (now() AT TIME ZONE 'utc') - make_interval(secs => $1) RETURNING task_id", [olderThanSeconds]);
    return rows.length;
  }
}
