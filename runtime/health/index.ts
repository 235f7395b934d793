/** @shopfds/runtime/health: the health monitor and the checks of each dependency. */
export { HealthMonitor } from "./health";
export type { CheckOutcome, CheckResult as HealthCheckResult, HealthCheck, HealthMonitorOptions, HealthReport, HealthStatus } from "./health";
export { diskCheck, postgresChecks, rabbitMqCheck, redisClusterCheck, redisMemoryCheck } from "./checks";
export type { BrokerConnectionState } from "./checks";
