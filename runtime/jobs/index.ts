/** @shopfds/runtime/jobs: Celery-compatible tasks on RabbitMQ: the producer, the worker, the scheduler, the queues. */
export { TaskFailedError, TaskProducer } from "./producer";
export type { ProducerOptions, SentChord, SendOptions, SentTask } from "./producer";
export { CompletionNotRecordedError, Worker } from "./worker";
export type { TaskContext, TaskHandler, TaskOutcome, TaskRequest, WorkerOptions } from "./worker";
export { Scheduler } from "./scheduler";
export type { ScheduleEntry, SchedulerOptions, TaskSender } from "./scheduler";
export { BrokerBlockedError, BrokerLink, BrokerUnavailableError } from "./broker-link";
export type { BrokerLinkOptions } from "./broker-link";
export { MalformedTaskError, WRITE_LOCATION_HEADER } from "./protocol";
export { CHORD_UNLOCK, signature } from "./canvas";
export { PostgresTaskResults } from "./results";
export type { RecordedOutcome, ResultsDatabase, TaskResults } from "./results";
export { migrateQueueArguments, migrateTaskQueues, QueueMigrationError } from "./queue-migration";
export type { QueueMigration, QueueMigrationResult } from "./queue-migration";
export type { Signature } from "./canvas";
export { DeadLetterError, DeadLetters, redactTaskValue } from "./dead-letters";
export type { DeadLetter, DeadLettersOptions, RedriveOptions, RedriveSelection } from "./dead-letters";
export { DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, DEAD_LETTER_ROUTING_KEY, EMAIL_QUEUE, EVENT_EXCHANGE, TASK_EXCHANGE, TASK_QUEUE, TASK_QUEUE_MAX_PRIORITY, TASK_QUEUE_ARGUMENTS } from "./topology";
