/**
 * The queue topology the runtime's producer and worker use, and which the broker's definitions declare
 * (components/rabbitmq/render.ts imports these; never the other way round). It is Celery's (see
 * CELERY-NOTES): tasks on the durable queue `celery` through the default exchange, events on the
 * durable topic exchange `celeryev`, remote control on the non-durable `celery.pidbox` (fanout) and
 * `reply.celery.pidbox` (direct). Declaring any of them with other properties makes Celery's own
 * declarations fail with 406 PRECONDITION_FAILED, so Python services must use exactly these.
 */
export const TASK_QUEUE = "celery";
/**
 * ShopFDS's queue for e-mail (slow network I/O), consumed by a worker of its own so a hung SMTP server
 * holds only e-mail slots; declared with the task queue's arguments (dead-lettering alike).
 */
export const EMAIL_QUEUE = "shopfds.email";
export const TASK_EXCHANGE = "celery";
export const EVENT_EXCHANGE = "celeryev";
export const PIDBOX_EXCHANGE = "celery.pidbox";
export const REPLY_EXCHANGE = "reply.celery.pidbox";
export const DEAD_LETTER_EXCHANGE = "shopfds.dlx";
export const DEAD_LETTER_QUEUE = "shopfds.dead";
export const DEAD_LETTER_ROUTING_KEY = "dead";
/**
 * Message priorities 0 (Celery's default) to 10 on the task queues (Celery's `priority` option, the AMQP
 * `priority` property; higher runs first). RabbitMQ documents 1–10 as the useful range (each level is a
 * sub-queue). A queue's arguments cannot change in place: `migrateQueueArguments` (queue-migration.ts,
 * `shopfds-runtime queues migrate`) moves an existing queue's messages across its re-declaration.
 */
export const TASK_QUEUE_MAX_PRIORITY = 10;
/**
 * Arguments of the task queues; Python services must declare `celery` with exactly these (Celery:
 * `task_queue_max_priority = 10` and the dead-letter arguments in `task_queues`' `queue_arguments`).
 */
export const TASK_QUEUE_ARGUMENTS = { "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": DEAD_LETTER_ROUTING_KEY, "x-max-priority": TASK_QUEUE_MAX_PRIORITY } as const;
