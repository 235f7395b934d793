/**
 * Checks a `docker.Container`'s inputs in the forms the Docker provider (kreuzwerker/docker, which
 * @pulumi/docker wraps) parses them, since mocks take any value and a real `pulumi up` would fail on
 * the first bad one:
 * - `cpus`: a rational number of cores, as Docker's `--cpus` (big.Rat.SetString: `0.5`, `2`, `1/2`;
 *   never `500m`), positive, at most nanosecond precision;
 * - `memory`: whole megabytes (an integer), positive;
 * - `ports`: integer internal/external ports 1–65535, an IP address, protocol tcp or udp;
 * - `restart`: no, on-failure, always or unless-stopped;
 * - `healthcheck` `interval`/`timeout`/`startPeriod`: Go durations (time.ParseDuration: `5s`, `1m30s`),
 *   `retries` a non-negative integer, `tests` starting with CMD, CMD-SHELL or NONE;
 * - `uploads[].permissions`: an octal mode (`0440`), `file` an absolute path;
 * - `logOpts`: string values;
 * - `volumes`: a named volume or an absolute host path (read-only: a host's files are for reading), an
 *   absolute container path;
 * - `labels`: string label names and values.
 */
const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
const RATIONAL = /^(\d+(\.\d+)?|\d+\/\d+)$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

const isPort = (p: unknown) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;

function rationalValue(s: string): number {
  const [a, b] = s.split("/");
  return b === undefined ? Number(a) : Number(a) / Number(b);
}

/** Problems of one container's inputs, each naming the field and the value (none: []). */
export function dockerInputProblems(name: string, inputs: Record<string, any>): string[] {
  const problems: string[] = [];
  const bad = (field: string, value: unknown, why: string) => problems.push(`${name}: ${field} ${JSON.stringify(value)} ${why}`);
  if (inputs.cpus !== undefined) {
    const cpus = inputs.cpus;
    if (typeof cpus !== "string" || !RATIONAL.test(cpus)) bad("cpus", cpus, "is not a rational number of CPUs (Docker's --cpus: 0.5, 2, 1/2)");
    else if (!(rationalValue(cpus) > 0)) bad("cpus", cpus, "must be more than 0");
    else if (!Number.isInteger(Math.round(rationalValue(cpus) * 1e9 * 1e6) / 1e6)) bad("cpus", cpus, "is more precise than a nano-CPU");
  }
  if (inputs.memory !== undefined && !(Number.isInteger(inputs.memory) && inputs.memory > 0)) bad("memory", inputs.memory, "is not a positive whole number of megabytes");
  for (const [i, p] of (inputs.ports ?? []).entries()) {
    if (!isPort(p.internal)) bad(`ports[${i}].internal`, p.internal, "is not a port (an integer from 1 to 65535)");
    if (p.external !== undefined && !isPort(p.external)) bad(`ports[${i}].external`, p.external, "is not a port (an integer from 1 to 65535)");
    if (p.ip !== undefined && !(IPV4.test(p.ip) && p.ip.split(".").every((o: string) => Number(o) <= 255))) bad(`ports[${i}].ip`, p.ip, "is not an IPv4 address");
    if (p.protocol !== undefined && !["tcp", "udp"].includes(p.protocol)) bad(`ports[${i}].protocol`, p.protocol, "is not tcp or udp");
  }
  if (inputs.restart !== undefined && !["no", "on-failure", "always", "unless-stopped"].includes(inputs.restart)) bad("restart", inputs.restart, "is not no, on-failure, always or unless-stopped");
  const hc = inputs.healthcheck;
  if (hc) {
    for (const key of ["interval", "timeout", "startPeriod"]) if (hc[key] !== undefined && !(typeof hc[key] === "string" && GO_DURATION.test(hc[key]))) bad(`healthcheck.${key}`, hc[key], "is not a Go duration such as 5s or 1m30s");
    if (hc.retries !== undefined && !(Number.isInteger(hc.retries) && hc.retries >= 0)) bad("healthcheck.retries", hc.retries, "is not a non-negative integer");
    if (!Array.isArray(hc.tests) || !["CMD", "CMD-SHELL", "NONE"].includes(hc.tests[0])) bad("healthcheck.tests", hc.tests, "does not start with CMD, CMD-SHELL or NONE");
  }
  for (const [i, u] of (inputs.uploads ?? []).entries()) {
    if (typeof u.file !== "string" || !u.file.startsWith("/")) bad(`uploads[${i}].file`, u.file, "is not an absolute path");
    if (u.permissions !== undefined && !/^0?[0-7]{3,4}$/.test(u.permissions)) bad(`uploads[${i}].permissions`, u.permissions, "is not an octal mode such as 0440");
  }
  for (const [k, v] of Object.entries(inputs.logOpts ?? {})) if (typeof v !== "string") bad(`logOpts.${k}`, v, "is not a string");
  for (const [i, v] of (inputs.volumes ?? []).entries()) {
    if ((v.volumeName === undefined) === (v.hostPath === undefined)) bad(`volumes[${i}]`, v, "must name either a volume or a host path");
    if (v.hostPath !== undefined && !(typeof v.hostPath === "string" && v.hostPath.startsWith("/"))) bad(`volumes[${i}].hostPath`, v.hostPath, "is not an absolute path");
    if (v.hostPath !== undefined && v.readOnly !== true) bad(`volumes[${i}].readOnly`, v.readOnly, "must be true for a host path");
    if (typeof v.containerPath !== "string" || !v.containerPath.startsWith("/")) bad(`volumes[${i}].containerPath`, v.containerPath, "is not an absolute path");
  }
  for (const [i, l] of (inputs.labels ?? []).entries()) if (typeof l.label !== "string" || typeof l.value !== "string" || l.label === "") bad(`labels[${i}]`, l, "is not a label name and a string value");
  return problems;
}
