/**
 * Pure renderers for the Redis Cluster: each node's redis.conf, the secret include file that carries
 * the password, and the idempotent cluster-creation script. Docker, Kubernetes and the local stack all
 * ship what these return (the local stack runs the very same creation script against loopback nodes).
 */
import { isHost, isSafePath, Problems, RULES } from "../validation";

/** Nodes of every ShopFDS Redis Cluster: 3 masters, each with 1 replica (the Docker, Kubernetes and local stacks). */
export const REDIS_NODE_COUNT = 6;

export interface RedisConfInput {
  /** Client port. */
  readonly port: number;
  /** Cluster bus port, set explicitly (the default port + 10000 overflows above 55535). */
  readonly clusterPort: number;
  /**
   * Milliseconds before an unreachable master is failed over. Failover completes in about
   * 1.3–1.7 × this + 0.7 s (measured), so 2000 keeps it near 4 s, well inside FR-014's 10 s.
   */
  readonly nodeTimeoutMs: number;
  /** Working directory: AOF, nodes.conf. */
  readonly dataDir: string;
  /** maxmemory, e.g. `256mb`. The policy is noeviction: a blacklist entry must never be evicted. */
  readonly maxMemory: string;
  /** Secret file with `requirepass` and `masterauth` lines (see renderRedisAuthInclude). */
  readonly authIncludeFile: string;
  /**
   * Whether clients are told host names (`cluster-announce-hostname`, given per node on the command
   * line) rather than IPs, so addresses survive a pod or container getting a new IP.
   */
  readonly announceHostnames: boolean;
  /**
   * TLS only: clients, replication and the cluster bus all speak TLS on `port` and `clusterPort` (no
   * plain port). Clients are not asked for certificates (they authenticate with the password); nodes
   * check each other's against the CA.
   */
  readonly tls?: RedisTlsFiles;
}

/** PEM files of a node's certificate, its key, and the CA that signs every node's certificate. */
export interface RedisTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

export interface NodeStartInput {
  /** The node's redis.conf. */
  readonly configFile: string;
  /** Its `dir` (where nodes.conf is). */
  readonly dataDir: string;
}

export interface ClusterCreateInput {
  /** Every node as seen from where the script runs; the first answers the "already formed?" question. */
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  /** Replicas per master (1: 6 nodes make 3 masters and 3 replicas). */
  readonly replicasPerMaster: number;
  /** File holding the bare password (given to redis-cli through REDISCLI_AUTH, never on its command line). */
  readonly passwordFile: string;
  /** Seconds to wait for every node to answer before giving up. */
  readonly waitSeconds: number;
  /** The nodes take TLS only: redis-cli verifies them against this CA. */
  readonly tlsCaFile?: string;
}


export function renderRedisConf(input: RedisConfInput): string {
  const p = new Problems("redis.conf");
  p.rule("port", RULES.port, input.port);
  p.rule("clusterPort", RULES.port, input.clusterPort);
  p.check(input.clusterPort !== input.port, "clusterPort", "must differ from port", input.clusterPort);
  p.rule("nodeTimeoutMs", RULES.redisNodeTimeoutMs, input.nodeTimeoutMs);
  p.check(isSafePath(input.dataDir), "dataDir", "must be an absolute path", input.dataDir);
  p.rule("maxMemory", RULES.redisSize, input.maxMemory);
  p.check(isSafePath(input.authIncludeFile), "authIncludeFile", "must be an absolute path", input.authIncludeFile);
  for (const key of ["certFile", "keyFile", "caFile"] as const) if (input.tls) p.check(isSafePath(input.tls[key]), `tls.${key}`, "must be an absolute path", input.tls[key]);
  p.throwIfAny();
  const listen = input.tls
    ? [
        // TLS only: no plain port; replication and the cluster bus over TLS too.
        "port 0",
        `tls-port ${input.port}`,
        `tls-cert-file ${input.tls.certFile}`,
        `tls-key-file ${input.tls.keyFile}`,
        `tls-ca-cert-file ${input.tls.caFile}`,
        "tls-auth-clients no",
        "tls-replication yes",
        "tls-cluster yes",
      ]
    : [`port ${input.port}`];
  return [
    "# Rendered by components/redis/render.ts; one file for every node of the cluster.",
    ...listen,
    "protected-mode no",
    "cluster-enabled yes",
    `cluster-port ${input.clusterPort}`,
    "cluster-config-file nodes.conf",
    `cluster-node-timeout ${input.nodeTimeoutMs}`,
    // Losing a majority of masters stops the cluster (CLUSTERDOWN) instead of serving part of the keys:
    // the FDS then falls back to PostgreSQL rather than answering "not listed" for missing slots.
    "cluster-require-full-coverage yes",
    "cluster-allow-reads-when-down no",
    `cluster-preferred-endpoint-type ${input.announceHostnames ? "hostname" : "ip"}`,
    `dir ${input.dataDir}`,
    "appendonly yes",
    "appendfsync everysec",
    'save ""',
    `maxmemory ${input.maxMemory}`,
    "maxmemory-policy noeviction",
    "repl-diskless-sync yes",
    "repl-diskless-sync-delay 0",
    "tcp-keepalive 60",
    `include ${input.authIncludeFile}`,
    "",
  ].join("\n");
}

/** The secret include: clients and replicas (to their master) authenticate with the same password. */
export function renderRedisAuthInclude(password: string): string {
  if (!/^[A-Za-z0-9]{16,128}$/.test(password)) {
    throw new Error("redis password: must be 16 to 128 letters and digits (value not shown)");
  }
  return `requirepass ${password}\nmasterauth ${password}\n`;
}

/**
 * A POSIX sh script that forms the cluster once: it waits for every node, exits 0 if the cluster is
 * already formed with every node (after waiting for state ok, as on a restart), creates it if every node
 * is still alone, and refuses (exit 2) a
 * half-formed cluster, which needs a person (`redis-cli --cluster fix`). Host names are resolved to
 * addresses first, since CLUSTER MEET takes addresses.
 */
export function renderClusterCreateScript(input: ClusterCreateInput): string {
  const p = new Problems("cluster creation");
  p.check(Number.isInteger(input.replicasPerMaster) && input.replicasPerMaster >= 1, "replicasPerMaster", "must be an integer ≥ 1", input.replicasPerMaster);
  const perGroup = input.replicasPerMaster + 1;
  p.check(
    input.nodes.length >= 3 * perGroup && input.nodes.length % perGroup === 0,
    "nodes",
    `must be a multiple of ${perGroup} and at least ${3 * perGroup} (3 masters, each with ${input.replicasPerMaster} replica(s))`,
    input.nodes.length,
  );
  input.nodes.forEach((n, i) => {
    p.check(isHost(n.host), `nodes[${i}].host`, "must be a host name or IP address", n.host);
    p.rule(`nodes[${i}].port`, RULES.port, n.port);
  });
  p.check(isSafePath(input.passwordFile), "passwordFile", "must be an absolute path", input.passwordFile);
  p.check(Number.isInteger(input.waitSeconds) && input.waitSeconds > 0, "waitSeconds", "must be a positive integer", input.waitSeconds);
  if (input.tlsCaFile !== undefined) p.check(isSafePath(input.tlsCaFile), "tlsCaFile", "must be an absolute path", input.tlsCaFile);
  p.throwIfAny();
  const cli = input.tlsCaFile ? `redis-cli --tls --cacert '${input.tlsCaFile}'` : "redis-cli";
  const nodes = input.nodes.map((n) => `${n.host}:${n.port}`).join(" ");
  return `#!/bin/sh
# Rendered by components/redis/render.ts: forms the Redis Cluster once; safe to run again.
set -eu
REDISCLI_AUTH="$(cat '${input.passwordFile}')"
export REDISCLI_AUTH
NODES="${nodes}"
EXPECTED=${input.nodes.length}
rcli() { ${cli} "$@"; }

info() { rcli -h "\${1%:*}" -p "\${1##*:}" cluster info 2>/dev/null | tr -d '\\r' | sed -n "s/^$2://p"; }

for node in $NODES; do
  waited=0
  until [ "$(rcli -h "\${node%:*}" -p "\${node##*:}" ping 2>/dev/null | tr -d '\\r')" = PONG ]; do
    waited=$((waited + 1))
    if [ "$waited" -gt ${input.waitSeconds * 10} ]; then echo "redis node $node did not answer within ${input.waitSeconds} s" >&2; exit 1; fi
    sleep 0.1
  done
done

first=\${NODES%% *}
wait_ok() {
  waited=0
  for node in $NODES; do
    until [ "$(info "$node" cluster_state)" = ok ]; do
      waited=$((waited + 1))
      if [ "$waited" -gt ${input.waitSeconds * 10} ]; then echo "cluster did not reach state ok within ${input.waitSeconds} s" >&2; exit 1; fi
      sleep 0.1
    done
  done
}
if [ "$(info "$first" cluster_known_nodes)" = "$EXPECTED" ]; then
  # Formed before (a restart): the nodes find each other again from nodes.conf.
  wait_ok
  echo "cluster already formed: $EXPECTED nodes, state ok"
  exit 0
fi
for node in $NODES; do
  if [ "$(info "$node" cluster_known_nodes)" != 1 ]; then
    echo "node $node already knows other nodes but the cluster is not complete; refusing to create over it (inspect with redis-cli --cluster check, repair with --cluster fix)" >&2
    exit 2
  fi
done

addresses=""
for node in $NODES; do
  host=\${node%:*}
  addr=$(getent hosts "$host" | awk 'NR == 1 { print $1 }')
  addresses="$addresses \${addr:-$host}:\${node##*:}"
done
# shellcheck disable=SC2086
rcli --cluster create $addresses --cluster-replicas ${input.replicasPerMaster} --cluster-yes
wait_ok
echo "cluster formed: $EXPECTED nodes, state ok"
`;
}

/**
 * A node's entrypoint. Redis keeps its peers' IP addresses in nodes.conf and reaches them only there;
 * when every pod of the cluster comes back with a new address (a full restart, a node drain of all of
 * them), no node can reach any other and the cluster never re-forms. So before the server starts, each
 * peer's address is looked up again from the host name it announced (nodes.conf records it after a
 * comma), and its own from its own name; a name that does not resolve yet keeps its old address (the
 * node that owns it will announce its new one once it is up). A first start has no nodes.conf.
 *
 * Names are resolved with `getent hosts`; `SHOPFDS_HOSTS_FILE`, when set, is a hosts-format file
 * consulted first (for tests, where the names are not in DNS). `SHOPFDS_ANNOUNCE_HOSTNAME` overrides
 * the announced name (default `hostname -f`); further arguments go to redis-server.
 */
export function renderNodeStartScript(input: NodeStartInput): string {
  const p = new Problems("redis node start script");
  p.check(isSafePath(input.configFile), "configFile", "must be an absolute path", input.configFile);
  p.check(isSafePath(input.dataDir), "dataDir", "must be an absolute path", input.dataDir);
  p.throwIfAny();
  return `#!/bin/sh
# Rendered by components/redis/render.ts: refresh the peers' addresses in nodes.conf, then start the node.
set -eu
NODES='${input.dataDir}/nodes.conf'
ANNOUNCE="\${SHOPFDS_ANNOUNCE_HOSTNAME:-$(hostname -f)}"
resolve() {
  if [ -n "\${SHOPFDS_HOSTS_FILE:-}" ] && [ -f "$SHOPFDS_HOSTS_FILE" ]; then
    found=$(awk -v h="$1" '$2 == h { print $1; exit }' "$SHOPFDS_HOSTS_FILE")
    if [ -n "$found" ]; then echo "$found"; return 0; fi
  fi
  getent hosts "$1" | awk '{ print $1; exit }'
}
if [ -s "$NODES" ]; then
  tmp="$NODES.refresh.$$"
  : > "$tmp"
  changed=0
  while IFS= read -r line; do
    # "<id> <ip>:<port>@<bus>,<hostname> <flags> …"; the "vars" line and lines without a name stay as they are.
    addr=$(echo "$line" | awk '{ print $2 }')
    name=\${addr#*,}
    ip=\${addr%%:*}
    if [ "$name" != "$addr" ] && [ -n "$name" ] && [ -n "$ip" ]; then
      new=$(resolve "$name" || true)
      if [ -n "$new" ] && [ "$new" != "$ip" ]; then
        line=$(echo "$line" | awk -v old="$ip" -v new="$new" '{ sub("^" old ":", new ":", $2); print }')
        changed=$((changed + 1))
      fi
    fi
    printf '%s\n' "$line" >> "$tmp"
  done < "$NODES"
  mv "$tmp" "$NODES"
  echo "nodes.conf: $changed address(es) refreshed from host names"
fi
exec redis-server '${input.configFile}' --cluster-announce-hostname "$ANNOUNCE" "$@"
`;
}
