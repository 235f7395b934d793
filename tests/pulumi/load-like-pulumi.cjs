// Loads a Pulumi TypeScript program the way the Pulumi CLI's Node.js host does (cmd/run/run.js): the
// project's ts-node, registered with type checking on, the project's tsconfig, and Pulumi's compiler
// defaults for TypeScript >= 4.7 (nodenext). Mocks stand in for the engine. Exit 0: the program
// compiled and registered resources; non-zero: compilation or registration failed.
"use strict";
const path = require("node:path");
const program = path.resolve(process.argv[2] || "index.ts");
const ts = require("typescript");
const tsnode = require("ts-node");
const tsconfig = ts.readConfigFile("tsconfig.json", ts.sys.readFile).config;
tsnode.register({
  compiler: "typescript",
  transpileOnly: false,
  project: "tsconfig.json",
  skipProject: false,
  compilerOptions: { target: "ES2020", module: "nodenext", moduleResolution: "nodenext", sourceMap: "true", ...tsconfig.compilerOptions },
});
const pulumi = require("@pulumi/pulumi");
let registered = 0;
pulumi.runtime.setAllConfig({ "shopfds:platform": "kubernetes", "shopfds:kubernetes": '{"namespace":"load-check","context":"load-check"}', "shopfds:smtp": '{"host":"relay.example","from":"ShopFDS <a@b.c>"}', "shopfds:backup": '{"enabled":false}', "shopfds:slackWebhookUrl": "https://hooks.slack.com/services/x" }, ["shopfds:slackWebhookUrl"]);
pulumi.runtime
  .setMocks(
    {
      // Echo the inputs; a RandomPassword also gets a result, as the provider would give it (letters and
      // digits when special is false), so the program's transforms of passwords run too.
      newResource: (a) => (registered++, { id: `${a.name}-id`, state: a.type === "random:index/randomPassword:RandomPassword" ? { ...a.inputs, result: "p".repeat(a.inputs.length ?? 16) } : a.inputs }),
      call: () => ({}),
    },
    "shopfds",
    "load-check",
    false,
  )
  .then(() => {
    require(program);
    return new Promise((r) => setTimeout(r, 300));
  })
  .then(() => {
    console.log(`loaded ${path.relative(process.cwd(), program)} with ts-node type checking; ${registered} resources registered`);
    process.exit(registered > 0 ? 0 : 3);
  })
  .catch((e) => {
    console.error(String(e && e.diagnosticText ? e.diagnosticText : e));
    process.exit(1);
  });
