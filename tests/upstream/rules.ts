/**
 * One rule per `checkedBy: rule` fact of tests/fixtures/upstream/facts.yaml: `check` lists where the
 * stacks, scripts or workflow break the fact (empty: they obey it); `negative` changes the world to what
 * the fact forbids (mostly what shipped before the fact was read), which `check` must then reject.
 */
import { fileKey } from "../../components/platform/kubernetes";
import { OPERATORS } from "../../components/platform/operators";
import { parse as parseYaml } from "yaml";
import { copy, dependencyClosure, Declared, dockerContainers, DOCKER_CONTAINER, envOf, key, mib, named, Snapshot, uploadsOf, World } from "./world";

export interface Rule {
  readonly check: (w: World) => string[];
  readonly negative: (w: World) => World;
}

const ES = "docker.elastic.co/elasticsearch/elasticsearch";
const KIBANA = "docker.elastic.co/kibana/kibana";
const LOGSTASH = "docker.elastic.co/logstash/logstash";
const FILEBEAT = "docker.elastic.co/beats/filebeat";
const GRAFANA = "grafana/grafana";
const RELEASE = "kubernetes:helm.sh/v3:Release";
const k8sStacks = (w: World) => [w.kind, w.prod];

/** The dev stack's one container of `image` (a rule's negative case changes it). */
function only(s: Snapshot, image: string): Declared {
  const [c] = dockerContainers(s, image);
  if (!c) throw new Error(`${s.stack}: no container of ${image}`);
  return c;
}

/** The command a Docker container runs: its entrypoint override, else its command. */
const commandLine = (c: Declared): string => [...(c.inputs.entrypoints ?? []), ...(c.inputs.command ?? [])].join(" ");

/** Every shell text a container runs: its command, health check and uploaded scripts. */
function shellTexts(c: Declared): { where: string; text: string }[] {
  return [
    { where: "command", text: commandLine(c) },
    { where: "health check", text: (c.inputs.healthcheck?.tests ?? []).join(" ") },
    ...uploadsOf(c)
      .filter((u) => u.permissions === "0755")
      .map((u) => ({ where: u.file, text: u.content })),
  ];
}

/** `-Xmx<n>[mg]` in MiB. */
function xmx(opts: string | undefined): number | undefined {
  const m = /-Xmx(\d+)([mMgG])/.exec(opts ?? "");
  return m ? Number(m[1]) * (/g/i.test(m[2]!) ? 1024 : 1) : undefined;
}

const helmValues = (s: Snapshot, chart: string) => s.resources.find((r) => r.type === RELEASE && r.inputs.chart === chart)?.inputs.values ?? {};

/** The `for … in $(…)` list commands and the lines of the loop they feed, per `rollout status`. */
function rolloutLoops(script: string): { list: string; line: string }[] {
  const lines = script.split("\n");
  const found: { list: string; line: string }[] = [];
  lines.forEach((line, i) => {
    if (!/rollout status/.test(line) || /^\s*#/.test(line)) return;
    const loop = lines
      .slice(0, i)
      .reverse()
      .find((l) => /^\s*for \w+ in \$\(/.test(l));
    found.push({ list: loop ?? "", line: line.trim() });
  });
  return found;
}

const RABBIT_CLUSTER = "kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster";
const SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor";
const CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate";

/** Every text a stack hands its workloads: ConfigMap data and Secret stringData, by `<resource>/<key>`. */
function handedTexts(s: Snapshot): { where: string; text: string }[] {
  return s.resources
    .filter((r) => r.type === "kubernetes:core/v1:ConfigMap" || r.type === "kubernetes:core/v1:Secret")
    .flatMap((r) => Object.entries({ ...(r.inputs.data ?? {}), ...(r.inputs.stringData ?? {}) }).map(([k, v]) => ({ where: `${r.name}/${k}`, text: String(v) })));
}

/** The pod templates of a stack's Deployments and StatefulSets, with their owner's name. */
function podTemplates(s: Snapshot): { owner: string; spec: any }[] {
  return s.resources.filter((r) => r.type === "kubernetes:apps/v1:Deployment" || r.type === "kubernetes:apps/v1:StatefulSet").map((r) => ({ owner: r.name, spec: r.inputs.spec.template.spec }));
}

/** The files a pod's container sees from Secret volumes: mount path + item path. */
function secretFilesOf(pod: any, container: any): string[] {
  return (container.volumeMounts ?? []).flatMap((m: any) => {
    const v = (pod.volumes ?? []).find((x: any) => x.name === m.name);
    return v?.secret ? (v.secret.items ?? []).map((i: any) => `${m.mountPath}/${i.path}`) : [];
  });
}

export const RULES: Record<string, Rule> = {
  "elasticsearch-file-env-mode": {
    check: (w) =>
      dockerContainers(w.dev, ES).flatMap((c) =>
        Object.entries(envOf(c))
          .filter(([k]) => k === "ELASTIC_PASSWORD_FILE" || k === "KEYSTORE_PASSWORD_FILE")
          .flatMap(([k, file]) => {
            const upload = uploadsOf(c).find((u) => u.file === file);
            if (!upload) return [`${c.name}: ${k}=${file} is not a file the container has`];
            const problems: string[] = [];
            if (upload.permissions !== "0400" && upload.permissions !== "0600") problems.push(`${c.name}: ${k}=${file} has mode ${upload.permissions}; the entrypoint takes 400 or 600 only`);
            // The provider writes uploads as root:root: a 0400/0600 file is the root user's alone.
            if (!String(c.inputs.user ?? "0").startsWith("0:")) problems.push(`${c.name}: ${k}=${file} is root's, read by user ${c.inputs.user}`);
            return problems;
          }),
      ),
    negative: (w) => {
      const n = copy(w);
      const c = only(n.dev, ES);
      delete c.inputs.entrypoints;
      c.inputs.envs.push("ELASTIC_PASSWORD_FILE=/run/secrets/elastic-password");
      return n;
    },
  },

  "grafana-file-env": {
    check: (w) =>
      dockerContainers(w.dev, GRAFANA).flatMap((c) => {
        const env = envOf(c);
        const problems = Object.entries(env)
          .filter(([k]) => /^GF_.+__FILE$/.test(k))
          .flatMap(([k, file]) => {
            const plain = k.replace(/__FILE$/, "");
            const upload = uploadsOf(c).find((u) => u.file === file);
            return [
              ...(plain in env ? [`${c.name}: both ${plain} and ${k} are set; run.sh exits 1`] : []),
              ...(upload ? [] : [`${c.name}: ${k}=${file} is not a file the container has`]),
            ];
          });
        if (!env.GF_SECURITY_ADMIN_PASSWORD__FILE) problems.push(`${c.name}: the admin password does not come from a file (GF_SECURITY_ADMIN_PASSWORD__FILE)`);
        for (const u of uploadsOf(c)) if (u.file.endsWith(".yaml") && !u.file.startsWith("/etc/grafana/provisioning/")) problems.push(`${c.name}: ${u.file} is outside GF_PATHS_PROVISIONING (/etc/grafana/provisioning)`);
        if (c.inputs.user !== "472:0") problems.push(`${c.name}: runs as ${c.inputs.user}, not the image's 472:0`);
        return problems;
      }),
    negative: (w) => {
      const n = copy(w);
      only(n.dev, GRAFANA).inputs.envs.push("GF_SECURITY_ADMIN_PASSWORD=admin");
      return n;
    },
  },

  "elasticsearch-password-env": {
    check: (w) =>
      dockerContainers(w.dev, ES).flatMap((c) => {
        const cmd = commandLine(c);
        if (!c.inputs.entrypoints) return envOf(c).ELASTIC_PASSWORD_FILE ? [] : [`${c.name}: no bootstrap password (neither ELASTIC_PASSWORD_FILE nor an entrypoint that sets ELASTIC_PASSWORD)`];
        const problems: string[] = [];
        if (!/exec \/usr\/local\/bin\/docker-entrypoint\.sh eswrapper/.test(cmd)) problems.push(`${c.name}: the entrypoint override does not end in the image's docker-entrypoint.sh eswrapper`);
        if (!/ELASTIC_PASSWORD="\$\(cat /.test(cmd)) problems.push(`${c.name}: the entrypoint override does not set ELASTIC_PASSWORD from the secret file`);
        if (envOf(c).ELASTIC_PASSWORD !== undefined) problems.push(`${c.name}: ELASTIC_PASSWORD in the container's plain environment`);
        return problems;
      }),
    negative: (w) => {
      const n = copy(w);
      only(n.dev, ES).inputs.entrypoints = ["sh", "-c", "exec /usr/share/elasticsearch/bin/elasticsearch"];
      return n;
    },
  },

  "logstash-default-pipeline": {
    check: (w) => [
      ...dockerContainers(w.dev, LOGSTASH).flatMap((c) => {
        const files = uploadsOf(c).filter((u) => u.file.startsWith("/usr/share/logstash/pipeline/")).map((u) => u.file);
        return files.length === 1 && files[0] === "/usr/share/logstash/pipeline/logstash.conf"
          ? []
          : [`${c.name}: pipeline files ${JSON.stringify(files)}; the image's own pipeline/logstash.conf stays in the one pipeline unless replaced`];
      }),
      ...k8sStacks(w).flatMap((s) =>
        s.resources
          .filter((r) => r.type === "kubernetes:logstash.k8s.elastic.co/v1alpha1:Logstash")
          .flatMap((r) => {
            const mounts = (r.inputs.spec.podTemplate?.spec?.containers ?? []).flatMap((c: any) => c.volumeMounts ?? []);
            return !r.inputs.spec.pipelines?.length || mounts.some((m: any) => String(m.mountPath).startsWith("/usr/share/logstash/pipeline"))
              ? [`${s.stack}/${r.name}: the pipeline must come from spec.pipelines (ECK writes pipelines.yml), not files in the image's pipeline directory`]
              : [];
          }),
      ),
    ],
    negative: (w) => {
      const n = copy(w);
      const u = uploadsOf(only(n.dev, LOGSTASH)).find((x) => x.file === "/usr/share/logstash/pipeline/logstash.conf")!;
      u.file = "/usr/share/logstash/pipeline/shopfds.conf";
      return n;
    },
  },

  "logstash-default-heap": {
    check: (w) => [
      ...dockerContainers(w.dev, LOGSTASH).flatMap((c) => {
        const heap = xmx(envOf(c).LS_JAVA_OPTS) ?? 1024;
        return heap > c.inputs.memory * 0.75 ? [`${c.name}: heap ${heap} MiB in a ${c.inputs.memory} MiB container`] : [];
      }),
      ...k8sStacks(w).flatMap((s) =>
        s.resources
          .filter((r) => r.type === "kubernetes:logstash.k8s.elastic.co/v1alpha1:Logstash")
          .flatMap((r) =>
            (r.inputs.spec.podTemplate?.spec?.containers ?? []).flatMap((c: any) => {
              const heap = xmx((c.env ?? []).find((e: any) => e.name === "LS_JAVA_OPTS")?.value) ?? 1024;
              const limit = mib(c.resources?.limits?.memory);
              return !(heap <= limit * 0.75) ? [`${s.stack}/${r.name}: heap ${heap} MiB with a ${c.resources?.limits?.memory} limit`] : [];
            }),
          ),
      ),
    ],
    negative: (w) => {
      const n = copy(w);
      const ls = n.kind.resources.find((r) => r.type === "kubernetes:logstash.k8s.elastic.co/v1alpha1:Logstash")!;
      const c = ls.inputs.spec.podTemplate.spec.containers[0];
      c.env = c.env.filter((e: any) => e.name !== "LS_JAVA_OPTS");
      c.resources.limits.memory = "1Gi";
      return n;
    },
  },

  "kibana-status-needs-login": {
    check: (w) =>
      w.dev.resources
        .filter((r) => r.type === DOCKER_CONTAINER)
        .flatMap((c) =>
          shellTexts(c).flatMap(({ where, text }) =>
            text
              .split("\n")
              .filter((l) => /\/api\/status/.test(l) && !/-u /.test(l) && envOf(c).STATUS_ALLOWANONYMOUS !== "true")
              .map((l) => `${c.name} (${where}): asks /api/status without credentials: ${l.trim()}`),
          ),
        ),
    negative: (w) => {
      const n = copy(w);
      only(n.dev, KIBANA).inputs.healthcheck.tests = ["CMD", "sh", "-c", "curl -fsS http://127.0.0.1:5601/api/status >/dev/null"];
      return n;
    },
  },

  "kibana-needs-its-user": {
    check: (w) => {
      const setters = w.dev.resources.filter((r) => r.type === DOCKER_CONTAINER && uploadsOf(r).some((u) => u.content.includes("/_security/user/kibana_system/_password")));
      const problems: string[] = [];
      for (const kibana of dockerContainers(w.dev, KIBANA)) {
        if (setters.length === 0) problems.push(`${kibana.name}: nothing sets kibana_system's password`);
        for (const setter of setters) {
          if (dependencyClosure(w.dev, setter).has(key(kibana))) problems.push(`${setter.name} (sets kibana_system's password) waits for ${kibana.name}, which cannot become ready without it`);
          if (!dependencyClosure(w.dev, kibana).has(key(setter))) problems.push(`${kibana.name} starts before ${setter.name} has set its password`);
        }
      }
      return problems;
    },
    negative: (w) => {
      const n = copy(w);
      const kibana = only(n.dev, KIBANA);
      const setup = named(n.dev, DOCKER_CONTAINER, "shopfds-dev-logging-setup");
      kibana.dependencies = kibana.dependencies.filter((u) => !u.includes("logging-setup"));
      setup.dependencies.push(`urn:pulumi:dev::shopfds::x$${key(kibana)}`);
      return n;
    },
  },

  "elastic-images-tini": {
    check: (w) =>
      [...dockerContainers(w.dev, ES), ...dockerContainers(w.dev, KIBANA)]
        .filter((c) => c.inputs.entrypoints)
        .flatMap((c) => (c.inputs.entrypoints[0] === "/bin/tini" && c.inputs.entrypoints[1] === "--" ? [] : [`${c.name}: its entrypoint override drops the image's tini`])),
    negative: (w) => {
      const n = copy(w);
      only(n.dev, KIBANA).inputs.entrypoints = ["sh", "-c", "exec /usr/local/bin/kibana-docker"];
      return n;
    },
  },

  "filebeat-strict-perms": {
    check: (w) =>
      dockerContainers(w.dev, FILEBEAT).flatMap((c) => {
        const config = uploadsOf(c).find((u) => u.file === "/usr/share/filebeat/filebeat.yml");
        if (!config) return [`${c.name}: no filebeat.yml`];
        // Uploads are root's: fine for the owner rule; the mode must not let group or others write.
        return (parseInt(config.permissions, 8) & 0o022) !== 0 ? [`${c.name}: filebeat.yml mode ${config.permissions} is writable by group or others`] : [];
      }),
    negative: (w) => {
      const n = copy(w);
      uploadsOf(only(n.dev, FILEBEAT)).find((u) => u.file === "/usr/share/filebeat/filebeat.yml")!.permissions = "0664";
      return n;
    },
  },

  "kubectl-rollout-status-rollingupdate": {
    check: (w) =>
      Object.entries(w.scripts).flatMap(([file, text]) =>
        rolloutLoops(text)
          .filter(({ list, line }) => /statefulset/i.test(list + line) && !/updateStrategy\.type=="RollingUpdate"/.test(list))
          .map(({ line }) => `${file}: \`${line}\` runs on StatefulSets not filtered to the RollingUpdate strategy`),
      ),
    negative: (w) => {
      const n = copy(w);
      const file = "scripts/e2e-kind.sh";
      (n.scripts as Record<string, string>)[file] = n.scripts[file]!.replace(/get statefulset -o jsonpath='[^']*'/, "get statefulset -o name");
      return n;
    },
  },

  "eck-elasticsearch-ondelete": {
    check: (w) =>
      w.kind.resources.some((r) => r.type === "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch") && !/wait --for=jsonpath='\{\.status\.phase\}'=Ready elasticsearch/.test(w.scripts["scripts/e2e-kind.sh"] ?? "")
        ? ["scripts/e2e-kind.sh: the kind stack has an ECK Elasticsearch (OnDelete sets) but the script does not wait for its status.phase Ready"]
        : [],
    negative: (w) => {
      const n = copy(w);
      (n.scripts as Record<string, string>)["scripts/e2e-kind.sh"] = n.scripts["scripts/e2e-kind.sh"]!.replace(/.*wait --for=jsonpath='\{\.status\.phase\}'=Ready elasticsearch.*\n/, "");
      return n;
    },
  },

  "eck-default-memory": {
    check: (w) =>
      k8sStacks(w).flatMap((s) =>
        s.resources
          .filter((r) => /elastic\.co\/v\w+:(Elasticsearch|Kibana|Logstash|Beat)$/.test(r.type))
          .flatMap((r) => {
            const templates = r.inputs.spec.nodeSets?.map((n: any) => n.podTemplate) ?? [r.inputs.spec.podTemplate ?? r.inputs.spec.daemonSet?.podTemplate];
            return templates.flatMap((t: any) => {
              const limits = (t?.spec?.containers ?? []).map((c: any) => c.resources?.limits?.memory);
              if (limits.length === 0 || limits.some((m: any) => m === undefined)) return [`${s.stack}/${r.name}: no memory limit (ECK's default would apply unseen by the budget)`];
              if (r.type.endsWith(":Kibana") && limits.some((m: string) => mib(m) < 2048)) return [`${s.stack}/${r.name}: Kibana below ECK's 2Gi, which ECK raised from 1Gi for lack of headroom`];
              return [];
            });
          }),
      ),
    negative: (w) => {
      const n = copy(w);
      n.kind.resources.find((r) => r.type === "kubernetes:kibana.k8s.elastic.co/v1:Kibana")!.inputs.spec.podTemplate.spec.containers[0].resources.limits.memory = "1Gi";
      return n;
    },
  },

  "cnpg-replica-pod-labels": {
    check: (w) =>
      k8sStacks(w).flatMap((s) => {
        const clusters = s.resources.filter((r) => r.type === "kubernetes:postgresql.cnpg.io/v1:Cluster").map((r) => r.inputs.metadata.name);
        const host = s.exported.postgres.replicaDiscovery?.host as string | undefined;
        if (!host) return [`${s.stack}: no replicaDiscovery in the outputs`];
        const svc = s.resources.find((r) => r.type === "kubernetes:core/v1:Service" && r.inputs.metadata.name === host.split(".")[0]);
        if (!svc) return [`${s.stack}: no Service behind ${host}`];
        const sel = svc.inputs.spec.selector ?? {};
        return clusters.some((c) => sel["cnpg.io/cluster"] === c && sel["cnpg.io/instanceRole"] === "replica" && Object.keys(sel).length === 2) && svc.inputs.spec.clusterIP === "None"
          ? []
          : [`${s.stack}/${svc.inputs.metadata.name}: selector ${JSON.stringify(sel)} (clusterIP ${svc.inputs.spec.clusterIP}) does not pick exactly a Cluster's replica pods by address`];
      }),
    negative: (w) => {
      const n = copy(w);
      n.prod.resources.find((r) => r.type === "kubernetes:core/v1:Service" && r.name === "shopfds-prod-pg-replicas")!.inputs.spec.selector = { "cnpg.io/cluster": "shopfds-prod-pg", role: "replica" };
      return n;
    },
  },

  "cnpg-services-and-certificate": {
    check: (w) =>
      k8sStacks(w).flatMap((s) => {
        const cluster = s.resources.find((r) => r.type === "kubernetes:postgresql.cnpg.io/v1:Cluster");
        if (!cluster) return [];
        const { name, namespace } = cluster.inputs.metadata;
        const forms = (svc: string) => [svc, `${svc}.${namespace}`, `${svc}.${namespace}.svc`, `${svc}.${namespace}.svc.cluster.local`];
        const certNames = ["-rw", "-r", "-ro"].flatMap((suffix) => forms(`${name}${suffix}`));
        const pg = s.exported.postgres;
        const problems: string[] = [];
        if (!forms(`${name}-rw`).includes(pg.primary.host)) problems.push(`${s.stack}: primary ${pg.primary.host} is not the operator's -rw Service`);
        if (!pg.replicas.every((r: any) => forms(`${name}-ro`).includes(r.host))) problems.push(`${s.stack}: replicas ${JSON.stringify(pg.replicas)} are not the operator's -ro Service`);
        if (pg.replicaDiscovery && !certNames.includes(pg.replicaDiscovery.serverName)) problems.push(`${s.stack}: replicaDiscovery.serverName ${pg.replicaDiscovery.serverName} is not a name in the operator's server certificate`);
        return problems;
      }),
    negative: (w) => {
      const n = copy(w);
      n.prod.exported.postgres.replicaDiscovery.serverName = n.prod.exported.postgres.replicaDiscovery.host;
      return n;
    },
  },

  "rabbitmq-operator-needs-cert-manager": {
    check: (w) =>
      k8sStacks(w).flatMap((s) =>
        s.resources
          .filter((r) => r.type === "kubernetes:yaml/v2:ConfigFile" && r.inputs.file === OPERATORS.rabbitmq.manifest)
          .flatMap((r) => {
            const certManager = s.resources.find((x) => x.type === RELEASE && x.inputs.chart === "cert-manager");
            return certManager && dependencyClosure(s, r).has(key(certManager)) ? [] : [`${s.stack}/${r.name}: applied without cert-manager installed first`];
          }),
      ),
    negative: (w) => {
      const n = copy(w);
      const r = n.kind.resources.find((x) => x.type === "kubernetes:yaml/v2:ConfigFile")!;
      r.dependencies = r.dependencies.filter((u) => !u.includes("cert-manager"));
      return n;
    },
  },

  "cert-manager-http01-solver-pods": {
    check: (w) =>
      k8sStacks(w).flatMap((s) =>
        s.resources
          .filter((r) => r.type === "kubernetes:cert-manager.io/v1:Issuer" && (r.inputs.spec.acme?.solvers ?? []).some((x: any) => x.http01?.ingress))
          .flatMap((issuer) => {
            const ns = issuer.inputs.metadata.namespace;
            const admits = s.resources.some(
              (p) =>
                p.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy" &&
                p.inputs.metadata.namespace === ns &&
                p.inputs.spec.podSelector?.matchLabels?.["acme.cert-manager.io/http01-solver"] === "true" &&
                (p.inputs.spec.ingress ?? []).some((rule: any) => (rule.ports ?? []).some((x: any) => x.port === 8089) && (rule.from ?? []).some((f: any) => f.namespaceSelector)),
            );
            return admits ? [] : [`${s.stack}/${issuer.name}: HTTP-01 solver pods (acme.cert-manager.io/http01-solver=true, port 8089) are not admitted by any NetworkPolicy of ${ns}: issuance would time out`];
          }),
      ),
    negative: (w) => {
      const n = copy(w);
      const i = n.prod.resources.findIndex((r) => r.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy" && r.name.endsWith("-acme-solver"));
      (n.prod.resources as unknown[]).splice(i, 1);
      return n;
    },
  },

  "rabbitmq-image-deprecated-env": {
    check: (w) =>
      dockerContainers(w.dev, "rabbitmq").flatMap((c) =>
        Object.keys(envOf(c))
          .filter((k) => /^RABBITMQ_(DEFAULT_(USER|PASS)_FILE|MANAGEMENT_SSL_|SSL_|VM_MEMORY_HIGH_WATERMARK)/.test(k))
          .map((k) => `${c.name}: ${k} makes the 3.13 entrypoint exit 1`),
      ),
    negative: (w) => {
      const n = copy(w);
      only(n.dev, "rabbitmq").inputs.envs.push("RABBITMQ_DEFAULT_PASS_FILE=/run/secrets/x");
      return n;
    },
  },

  "kube-prometheus-stack-grafana-name": {
    check: (w) =>
      k8sStacks(w).flatMap((s) => {
        const release = s.resources.find((r) => r.type === RELEASE && r.inputs.chart === "kube-prometheus-stack");
        if (!release || !s.exported.grafana) return [];
        const service = release.inputs.values?.grafana?.fullnameOverride ?? `${release.inputs.name}-grafana`;
        const host = new URL(s.exported.grafana).hostname.split(".")[0];
        return host === service ? [] : [`${s.stack}: the exported Grafana URL names ${host}; the chart's Grafana Service is ${service}`];
      }),
    negative: (w) => {
      const n = copy(w);
      delete helmValues(n.prod, "kube-prometheus-stack").grafana.fullnameOverride;
      return n;
    },
  },

  "kube-prometheus-stack-no-resources": {
    check: (w) =>
      k8sStacks(w).flatMap((s) => {
        const v = helmValues(s, "kube-prometheus-stack");
        const paths: [string, any][] = [
          ["prometheusOperator.resources", v.prometheusOperator?.resources],
          ["prometheus.prometheusSpec.resources", v.prometheus?.prometheusSpec?.resources],
          ["alertmanager.alertmanagerSpec.resources", v.alertmanager?.alertmanagerSpec?.resources],
          ["grafana.resources", v.grafana?.resources],
          ["grafana.sidecar.resources", v.grafana?.sidecar?.resources],
          ["kube-state-metrics.resources", v["kube-state-metrics"]?.resources],
          ["prometheus-node-exporter.resources", v["prometheus-node-exporter"]?.resources],
        ];
        return paths.filter(([, r]) => !(mib(r?.limits?.memory) > 0)).map(([p]) => `${s.stack}: kube-prometheus-stack ${p} sets no memory limit (the chart's is {})`);
      }),
    negative: (w) => {
      const n = copy(w);
      delete helmValues(n.kind, "kube-prometheus-stack").grafana.resources;
      return n;
    },
  },

  "node-exporter-host-rootfs": {
    check: (w) =>
      dockerContainers(w.dev, "prom/node-exporter").flatMap((c) => {
        const rootfs = /--path\.rootfs=(\S+)/.exec((c.inputs.command ?? []).join(" "))?.[1];
        const mount = (c.inputs.volumes ?? []).find((v: any) => v.hostPath === "/");
        if (!rootfs || !mount) return [`${c.name}: without the host's / and --path.rootfs it reports the container's filesystems (HostDiskFull would watch the wrong disk)`];
        return mount.containerPath === rootfs && mount.readOnly === true ? [] : [`${c.name}: --path.rootfs=${rootfs} but the host's / is at ${mount.containerPath} (read-only: ${mount.readOnly})`];
      }),
    negative: (w) => {
      const n = copy(w);
      const c = only(n.dev, "prom/node-exporter");
      delete c.inputs.command;
      c.inputs.volumes = [];
      return n;
    },
  },

  "cnpg-chart-no-resources": {
    check: (w) => k8sStacks(w).flatMap((s) => (mib(helmValues(s, "cloudnative-pg").resources?.limits?.memory) > 0 ? [] : [`${s.stack}: the CloudNativePG operator has no memory limit (the chart's is {})`])),
    negative: (w) => {
      const n = copy(w);
      delete helmValues(n.kind, "cloudnative-pg").resources;
      return n;
    },
  },

  "rabbitmq-operator-tls": {
    check: (w) =>
      k8sStacks(w).flatMap((s) =>
        s.resources
          .filter((r) => r.type === RABBIT_CLUSTER)
          .flatMap((r) => {
            const tls = r.inputs.spec.tls ?? {};
            const problems: string[] = [];
            if (tls.disableNonTLSListeners && !tls.secretName) problems.push(`${s.stack}/${r.name}: disableNonTLSListeners without tls.secretName (the operator refuses: "TLS must be enabled")`);
            if (tls.secretName) {
              const cert = s.resources.find((c) => c.type === CERTIFICATE && c.inputs.spec.secretName === tls.secretName);
              if (!cert) problems.push(`${s.stack}/${r.name}: nothing writes the Secret ${tls.secretName} (tls.crt, tls.key): the operator reconciles nothing until it exists`);
              else if (!dependencyClosure(s, r).has(key(cert))) problems.push(`${s.stack}/${r.name}: declared before the Certificate ${cert.name} that writes its Secret`);
            }
            if (!tls.disableNonTLSListeners) return problems;
            for (const m of s.resources.filter((x) => x.type === SERVICE_MONITOR && x.inputs.spec.selector?.matchLabels?.["app.kubernetes.io/name"] === r.name))
              for (const e of m.inputs.spec.endpoints)
                if (e.port !== "prometheus-tls" || e.scheme !== "https") problems.push(`${s.stack}/${m.name}: scrapes port ${e.port} over ${e.scheme ?? "http"}, but the Service has only prometheus-tls (HTTPS)`);
            const host = new RegExp(`(amqp|http)://[^/\\s"]*@?${r.name}\\.[^/\\s":]*:(5672|15672|15692)\\b`);
            for (const t of handedTexts(s)) if (host.test(t.text)) problems.push(`${s.stack}/${t.where}: a plain port of ${r.name}, which takes TLS only`);
            return problems;
          }),
      ),
    negative: (w) => {
      const n = copy(w);
      const m = n.prod.resources.find((x) => x.type === SERVICE_MONITOR && x.name === "shopfds-prod-rabbitmq")!;
      m.inputs.spec.endpoints[0].port = "prometheus";
      delete m.inputs.spec.endpoints[0].scheme;
      return n;
    },
  },

  "redis-exporter-tls": {
    check: (w) =>
      k8sStacks(w).flatMap((s) => {
        const tlsOnly = handedTexts(s).some((t) => /redis\.conf$/.test(t.where) && /^port 0$/m.test(t.text) && /^tls-port \d+$/m.test(t.text));
        if (!tlsOnly) return [];
        return podTemplates(s).flatMap(({ owner, spec }) =>
          (spec.containers ?? [])
            .filter((c: any) => String(c.image).startsWith("oliver006/redis_exporter:"))
            .flatMap((c: any) => {
              const args: string[] = [...(c.command ?? []), ...(c.args ?? [])];
              const addr = args.find((a) => a.startsWith("--redis.addr="));
              const ca = args.find((a) => a.startsWith("--tls-ca-cert-file="))?.slice("--tls-ca-cert-file=".length);
              const problems: string[] = [];
              if (!addr?.startsWith("--redis.addr=rediss://")) problems.push(`${s.stack}/${owner}: ${addr ?? "no --redis.addr"}: the nodes take TLS only and the exporter speaks it only to rediss://`);
              if (args.includes("--skip-tls-verification")) problems.push(`${s.stack}/${owner}: --skip-tls-verification`);
              if (!ca || !secretFilesOf(spec, c).includes(ca)) problems.push(`${s.stack}/${owner}: --tls-ca-cert-file ${ca ?? "missing"} is not a file mounted in the container (the system CAs do not hold the stack's)`);
              return problems;
            }),
        );
      }),
    negative: (w) => {
      const n = copy(w);
      const c = n.prod.resources.find((r) => r.type === "kubernetes:apps/v1:Deployment" && r.name === "shopfds-prod-monitoring-redis-exporter")!.inputs.spec.template.spec.containers[0];
      for (const field of ["command", "args"]) if (c[field]) c[field] = c[field].map((a: string) => a.replace("rediss://", "redis://"));
      return n;
    },
  },

  "redis-exporter-every-node": {
    check: (w) => {
      const EXPORTER = "oliver006/redis_exporter";
      /** The password file's keys, which are the only targets the exporter authenticates. */
      const keysIn = (text: string | undefined) => (text ? Object.keys(JSON.parse(text) as object).sort() : []);
      const problems: string[] = [];
      // Docker: the Prometheus container's prometheus.yml and the exporter container's password file.
      for (const s of [w.dev]) {
        const [exporter] = dockerContainers(s, EXPORTER);
        const prometheus = s.resources.find((r) => r.type === DOCKER_CONTAINER && uploadsOf(r).some((u) => u.file.endsWith("/prometheus.yml")));
        if (!exporter || !prometheus) {
          problems.push(`${s.stack}: no redis_exporter or Prometheus container`);
          continue;
        }
        const pwFile = (exporter.inputs.command as string[]).find((a) => a.startsWith("--redis.password-file="))?.split("=")[1];
        const keys = keysIn(uploadsOf(exporter).find((u) => u.file === pwFile)?.content);
        const job = (parseYaml(uploadsOf(prometheus).find((u) => u.file.endsWith("/prometheus.yml"))!.content).scrape_configs as any[]).find((j) => j.job_name === "redis");
        const targets = (job?.static_configs ?? []).flatMap((c: any) => c.targets).sort();
        const address = (job?.relabel_configs ?? []).find((r: any) => r.target_label === "__address__")?.replacement;
        if (job?.metrics_path !== "/scrape" || !(job?.relabel_configs ?? []).some((r: any) => r.target_label === "__param_target")) problems.push(`${s.stack}: the redis job scrapes ${job?.metrics_path ?? "nothing"} of ${targets.join(", ")}: only the node of --redis.addr is reported`);
        if (JSON.stringify(targets) !== JSON.stringify(keys)) problems.push(`${s.stack}: the redis job's targets (${targets.join(", ")}) are not the password file's nodes (${keys.join(", ")})`);
        if (!String(address).startsWith(`${exporter.inputs.hostname ?? exporter.inputs.name}:`)) problems.push(`${s.stack}: the redis job goes through ${address}, not the exporter`);
      }
      // Kubernetes: the exporter's ServiceMonitor and its password Secret.
      for (const s of k8sStacks(w)) {
        const monitor = s.resources.find((r) => r.type === SERVICE_MONITOR && /redis-exporter$/.test(r.name));
        const keys = keysIn(handedTexts(s).find((t) => /redis-exporter.*\/.*redis-passwords\.json$/.test(t.where))?.text);
        const endpoints: any[] = monitor?.inputs.spec.endpoints ?? [];
        const targets = endpoints.flatMap((e) => (e.path === "/scrape" ? (e.params?.target ?? []) : [])).sort();
        if (endpoints.some((e) => e.path !== "/scrape")) problems.push(`${s.stack}: the redis exporter's ServiceMonitor scrapes ${endpoints.map((e) => e.path).join(", ")}: only the node of --redis.addr is reported`);
        if (JSON.stringify(targets) !== JSON.stringify(keys) || keys.length === 0) problems.push(`${s.stack}: the ServiceMonitor's targets (${targets.join(", ")}) are not the password file's nodes (${keys.join(", ")})`);
        for (const e of endpoints) if (!(e.relabelings ?? []).some((r: any) => r.targetLabel === "instance" && r.replacement === e.params?.target?.[0])) problems.push(`${s.stack}: the endpoint for ${e.params?.target?.[0]} does not name its node as the instance`);
      }
      return problems;
    },
    negative: (w) => {
      // What shipped before the fact was read: the exporter's own /metrics, once.
      const n = copy(w);
      const m = n.prod.resources.find((r) => r.type === SERVICE_MONITOR && /redis-exporter$/.test(r.name))!;
      m.inputs.spec.endpoints = [{ port: "metrics", path: "/metrics", interval: "10s" }];
      return n;
    },
  },

  "flower-broker-tls": {
    check: (w) =>
      k8sStacks(w).flatMap((s) =>
        podTemplates(s).flatMap(({ owner, spec }) =>
          (spec.containers ?? [])
            .filter((c: any) => String(c.image).startsWith("mher/flower:"))
            .flatMap((c: any) => {
              const line = [...(c.command ?? []), ...(c.args ?? [])].join(" ");
              const brokerFile = /--broker="\$\(cat ([^)]+)\)"/.exec(line)?.[1];
              const texts = handedTexts(s);
              const broker = brokerFile ? texts.find((t) => t.where === `${owner}-secrets/${fileKey(brokerFile)}`)?.text : undefined;
              if (!broker) return [`${s.stack}/${owner}: no broker URL file found for Flower (--broker="$(cat …)")`];
              if (!broker.startsWith("amqps://")) return [];
              const module = /--config=(\w+)/.exec(line)?.[1];
              const path = (c.env ?? []).find((e: any) => e.name === "PYTHONPATH")?.value;
              const config = module && path ? texts.find((t) => t.where === `${owner}-config/${fileKey(`${path}/${module}.py`)}`)?.text : undefined;
              const ca = /"ca_certs": "([^"]+)"/.exec(config ?? "")?.[1];
              if (!config || !/"cert_reqs": ssl\.CERT_REQUIRED/.test(config) || !ca) return [`${s.stack}/${owner}: an amqps:// broker without a Celery config module (--config, PYTHONPATH) setting broker_use_ssl with ca_certs: py-amqp checks the system CAs only`];
              return secretFilesOf(spec, c).includes(ca) ? [] : [`${s.stack}/${owner}: broker_use_ssl ca_certs ${ca} is not mounted in the container`];
            }),
        ),
      ),
    negative: (w) => {
      const n = copy(w);
      const c = n.prod.resources.find((r) => r.type === "kubernetes:apps/v1:Deployment" && r.name === "shopfds-prod-jobs-flower")!.inputs.spec.template.spec.containers[0];
      c.command = c.command.map((a: string) => a.replace(/--config=\w+ /, ""));
      return n;
    },
  },
};
