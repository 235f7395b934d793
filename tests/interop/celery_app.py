"""A real Celery 5 application (Debian's python3-celery) for the interop tests: the TypeScript worker
and producer must work with it exactly as Python services would. Queues are per test run (QUEUE_PREFIX)."""
import os

from celery import Celery
from kombu import Exchange, Queue

prefix = os.environ.get("QUEUE_PREFIX", "interop")
# RESULT_BACKEND (tests/integration/celery-chord.test.ts): Celery's database backend on the test
# database, the store the runtime's chords count in; rpc:// (which refuses chords) otherwise.
app = Celery("shopfds_interop", broker=os.environ["BROKER_URL"], backend=os.environ.get("RESULT_BACKEND", "rpc://"))
app.conf.update(
    task_queues=[Queue(f"{prefix}.py", Exchange(f"{prefix}.py", type="direct"), routing_key=f"{prefix}.py")],
    task_default_queue=f"{prefix}.py",
    # Task events on (as `-E`; Flower's tests need them) unless CELERY_TASK_EVENTS=0 (Celery's default: off).
    worker_send_task_events=os.environ.get("CELERY_TASK_EVENTS", "1") == "1",
    task_send_sent_event=True,
    broker_connection_retry_on_startup=True,
)
# A priority queue (tests/integration/queue-priority.test.ts): declared as the runtime declares its task
# queues' priority (x-max-priority 10), taken one task at a time so a backlog runs in priority order.
if os.environ.get("PRIORITY_QUEUE"):
    name = os.environ["PRIORITY_QUEUE"]
    app.conf.task_queues = [*app.conf.task_queues, Queue(name, Exchange(name, type="direct"), routing_key=name, queue_arguments={"x-max-priority": 10})]
    app.conf.worker_prefetch_multiplier = 1


@app.task(name="interop.py_multiply")
def py_multiply(a, b, scale=1):
    return {"product": a * b * scale, "ran_on": "python"}


@app.task(name="bench.noop")
def noop(i):
    return i


# Canvas (tests/integration/celery-canvas.test.ts): chain steps, callbacks and errbacks.
@app.task(name="interop.py_add")
def py_add(x, y):
    return x + y


@app.task(name="interop.py_fail")
def py_fail(x):
    raise ValueError(f"py_fail({x})")


@app.task(name="interop.py_errback")
def py_errback(task_id):
    return f"errback for {task_id}"


# Tracing (tests/integration/tracing.test.ts): the W3C trace context a task came with. Celery copies a
# message's headers onto task.request, where opentelemetry-instrumentation-celery reads `traceparent`
# (extract(task.request)) to continue the trace; Debian has no python3-opentelemetry, so the task
# returns what that instrumentation would read.
@app.task(name="interop.py_traceparent", bind=True)
def py_traceparent(self, *_ignored):
    return getattr(self.request, "traceparent", None)


# Chords (tests/integration/celery-chord.test.ts): a body gets its header's results as a list first.
@app.task(name="interop.py_sum")
def py_sum(values, *rest):
    return sum(values) + sum(rest)
