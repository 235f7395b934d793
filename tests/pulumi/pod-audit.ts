/**
 * What the kubelet and the Pod Security admission would say of a pod template, checked without a
 * cluster (mocks accept pods that a real node cannot run):
 *
 * - File access under the kubelet's rules: a Secret or ConfigMap file is owned by root; with the pod's
 *   `fsGroup` set, its group is the fsGroup and the kubelet adds group read (0440) to its mode (so the
 *   pod's processes, which carry the fsGroup as a supplementary group, can read it); without one, the
 *   file is root:root with the volume's mode (`items[].mode`, else `defaultMode`, else 0644). The
 *   container's user (runAsUser, which must be set: an image's default user is not visible here) must
 *   be able to read every file mounted from such a volume.
 * - Pod Security "restricted" (kubernetes.io/docs/concepts/security/pod-security-standards): non-root,
 *   no privilege escalation, every capability dropped (NET_BIND_SERVICE may be added back), a seccomp
 *   profile of RuntimeDefault or Localhost, only the allowed volume types, no host namespaces or ports.
 */
export interface PodTemplate {
  readonly owner: string;
  readonly spec: Record<string, any>;
}

const ALLOWED_VOLUMES = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

/** The pod templates of StatefulSets, Deployments, DaemonSets and Jobs in a mock run. */
export function podTemplates(resources: readonly { type: string; name: string; inputs: Record<string, any> }[]): PodTemplate[] {
  return resources
    .filter((r) => /^kubernetes:(apps\/v1:(StatefulSet|Deployment|DaemonSet)|batch\/v1:Job)$/.test(r.type))
    .map((r) => ({ owner: `${r.type.split(":").pop()} ${r.name}`, spec: r.inputs.spec.template.spec }));
}

/** Problems of file access: `container: cannot read /path (mode 0440 root:root, runs as 999:999)`. */
export function fileAccessProblems(pod: PodTemplate): string[] {
  const problems: string[] = [];
  const sc = pod.spec.securityContext ?? {};
  const volumes = new Map<string, any>((pod.spec.volumes ?? []).map((v: any) => [v.name, v]));
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    const uid: number | undefined = c.securityContext?.runAsUser ?? sc.runAsUser;
    const gid: number | undefined = c.securityContext?.runAsGroup ?? sc.runAsGroup;
    const groups = new Set<number>([...(gid !== undefined ? [gid] : []), ...(sc.fsGroup !== undefined ? [sc.fsGroup] : []), ...(sc.supplementalGroups ?? [])]);
    for (const m of c.volumeMounts ?? []) {
      const v = volumes.get(m.name);
      const source = v?.secret ?? v?.configMap;
      if (!source) continue;
      if (uid === undefined) {
        problems.push(`${pod.owner} ${c.name}: runAsUser is not set, so who reads ${m.mountPath} depends on the image`);
        continue;
      }
      const item = (source.items ?? []).find((i: any) => i.path === m.subPath);
      const declared: number = item?.mode ?? source.defaultMode ?? 0o644;
      const fileGid: number = sc.fsGroup ?? 0;
      const mode = sc.fsGroup !== undefined ? declared | 0o440 : declared;
      const readable = uid === 0 || (mode & 0o004) !== 0 || (groups.has(fileGid) && (mode & 0o040) !== 0);
      if (!readable) problems.push(`${pod.owner} ${c.name}: cannot read ${m.mountPath} (mode 0${mode.toString(8)} root:${fileGid}, runs as ${uid}:${gid ?? "?"}${groups.size ? ` groups ${[...groups].join(",")}` : ""})`);
    }
  }
  return problems;
}

/** Where the pod breaks Pod Security "restricted". */
export function restrictedProblems(pod: PodTemplate): string[] {
  const problems: string[] = [];
  const sc = pod.spec.securityContext ?? {};
  const at = (what: string) => `${pod.owner}: ${what}`;
  if (pod.spec.hostNetwork || pod.spec.hostPID || pod.spec.hostIPC) problems.push(at("host namespaces"));
  for (const v of pod.spec.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== "name");
    if (!type || !ALLOWED_VOLUMES.includes(type)) problems.push(at(`volume ${v.name} of type ${type} is not allowed`));
  }
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    const csc = c.securityContext ?? {};
    const where = (what: string) => at(`container ${c.name}: ${what}`);
    const nonRoot = csc.runAsNonRoot ?? sc.runAsNonRoot;
    const user = csc.runAsUser ?? sc.runAsUser;
    if (nonRoot !== true) problems.push(where("runAsNonRoot is not true"));
    if (user === 0) problems.push(where("runs as root (runAsUser 0)"));
    if (csc.privileged) problems.push(where("privileged"));
    if (csc.allowPrivilegeEscalation !== false) problems.push(where("allowPrivilegeEscalation is not false"));
    if (!(csc.capabilities?.drop ?? []).includes("ALL")) problems.push(where("capabilities do not drop ALL"));
    const added = (csc.capabilities?.add ?? []).filter((x: string) => x !== "NET_BIND_SERVICE");
    if (added.length) problems.push(where(`adds capabilities ${added.join(", ")}`));
    const seccomp = csc.seccompProfile?.type ?? sc.seccompProfile?.type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") problems.push(where("no seccomp profile (RuntimeDefault)"));
    if ((c.ports ?? []).some((p: any) => p.hostPort)) problems.push(where("host ports"));
  }
  return problems;
}

/**
 * Each container's startup budget (initialDelaySeconds + periodSeconds × failureThreshold of its
 * startupProbe: how long the kubelet lets it start before killing it) against how long its workload
 * needs to start, `needs[container name]` seconds. A container without a startup probe is judged by its
 * liveness probe instead, which would kill it just the same.
 */
export function startupBudgetProblems(pod: PodTemplate, needs: Readonly<Record<string, number>>): string[] {
  const problems: string[] = [];
  for (const c of pod.spec.containers) {
    const need = needs[c.name];
    if (need === undefined) {
      problems.push(`${pod.owner} ${c.name}: no start time is known for it (add one to the audit's table)`);
      continue;
    }
    const probe = c.startupProbe ?? c.livenessProbe;
    if (!probe) continue;
    const budget = (probe.initialDelaySeconds ?? 0) + (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3);
    if (budget < need) problems.push(`${pod.owner} ${c.name}: start budget ${budget} s is shorter than the ${need} s it needs to start`);
  }
  return problems;
}
