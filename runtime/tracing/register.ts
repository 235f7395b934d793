/**
 * `import "@shopfds/runtime/tracing/register"` as a process's first import: starts tracing from the
 * OTEL_* environment (see `tracingOptionsFromEnv`) before pg, ioredis and the web framework load, and
 * flushes the spans when the process ends. Without a collector configured it does nothing.
 * The service name defaults to `shopfds-<script>` (shopfds-service, shopfds-worker …).
 */
import { basename, extname } from "node:path";
import { startTracing, tracingOptionsFromEnv } from "./index";

const script = process.argv[1] ? basename(process.argv[1], extname(process.argv[1])) : "process";
const options = tracingOptionsFromEnv(process.env, `shopfds-${script}`);
export const tracing = options ? startTracing(options) : undefined;
if (tracing) process.once("beforeExit", () => void tracing.shutdown());
