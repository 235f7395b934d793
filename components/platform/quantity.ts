/** Conversions from Kubernetes resource quantities, for the Docker backend's limits. */

const BINARY: Record<string, number> = { "": 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

/** `512Mi` → 512; `1Gi` → 1024. Memory for Docker's `memory` (MiB). */
export function quantityToMiB(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)?$/.exec(quantity);
  if (!m) throw new Error(`memory quantity ${JSON.stringify(quantity)} is not a Kubernetes quantity such as 512Mi or 1Gi`);
  return Math.ceil((Number(m[1]) * BINARY[m[2] ?? ""]) / 1024 ** 2);
}

/** `250m` → 0.25; `2` → 2. CPU cores. */
export function quantityToCores(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(m)?$/.exec(quantity);
  if (!m) throw new Error(`cpu quantity ${JSON.stringify(quantity)} is not a Kubernetes quantity such as 250m or 2`);
  return m[2] ? Number(m[1]) / 1000 : Number(m[1]);
}

/** Twice a CPU quantity, in the same notation: the CPU limit is twice the request. */
export function doubleCpu(quantity: string): string {
  const cores = quantityToCores(quantity) * 2;
  return Number.isInteger(cores) ? String(cores) : `${Math.round(cores * 1000)}m`;
}

/**
 * A CPU quantity as Docker's `--cpus` takes it (the Docker provider parses it as a rational number of
 * cores: `0.5`, never `500m`), twice the request as on Kubernetes: `250m` → `"0.5"`, `2` → `"4"`.
 */
export function dockerCpus(request: string): string {
  const cores = quantityToCores(request) * 2;
  // Docker counts in nano-CPUs: more than 9 decimals would be refused as too precise.
  return String(Math.round(cores * 1e9) / 1e9);
}
