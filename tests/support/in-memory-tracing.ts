/**
 * Test support: import first (before pg, ioredis and node:http load) to trace the test's process with
 * the runtime's own startTracing, its spans kept in memory as they end.
 */
import { InMemorySpanExporter, SimpleSpanProcessor, startTracing } from "../../runtime/tracing";

export const exporter = new InMemorySpanExporter();
export const tracing = startTracing({ service: "tracing-test", spanProcessors: [new SimpleSpanProcessor(exporter)] })!;
