/**
 * What a CI job needs before it runs `pulumi preview` or `pulumi up` on a stack, from its stack file
 * (Pulumi.<stack>.yaml, validated by the program's own parseStackConfig): its platform, the kubeconfig
 * context it deploys to, the ESC environments it imports, and the secret settings the program will
 * refuse to run without (requiredSecrets). Prints one JSON object; scripts/ci/deploy-env.sh reads it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { requiredSecrets } from "../../components/config";
import { devStackSettings } from "../local-stack/stack";

const stack = process.argv[2];
if (!stack || !/^[a-z][a-z0-9-]*$/.test(stack)) {
  console.error("usage: stack-requirements.ts <stack>");
  process.exit(2);
}
const file = path.resolve(__dirname, "../..", `Pulumi.${stack}.yaml`);
const doc = parse(readFileSync(file, "utf8")) as { environment?: string[] };
const cfg = devStackSettings(file);
console.log(
  JSON.stringify({
    stack,
    platform: cfg.platform,
    context: cfg.platform === "kubernetes" ? cfg.kubernetes.context : null,
    environments: doc.environment ?? [],
    secrets: requiredSecrets(cfg).map((s) => ({ key: s.key, why: s.why })),
  }),
);
