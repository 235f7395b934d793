/**
 * The service image's entry points (Dockerfile): compiled JavaScript of the reference service package
 * (service/, built with tsc), run by plain node with production dependencies only. The stacks run every
 * ShopFDS process through `imageCommand`, so a renamed entry point is a type error here, and
 * tests/unit/service-image.test.ts checks each one against the built package.
 */
export const IMAGE_ENTRY_POINTS = {
  service: "service/dist/bin/service.js",
  worker: "service/dist/bin/worker.js",
  scheduler: "service/dist/bin/scheduler.js",
  migrate: "service/dist/bin/migrate.js",
  seed: "service/dist/bin/seed.js",
  createAdmin: "service/dist/bin/create-admin.js",
  /** The dev stacks' Slack-compatible webhook sink (alerts land there when no Slack webhook is set). */
  webhookSink: "service/dist/bin/webhook-sink.js",
} as const;

/** The command that runs an entry point of the service image with `args`. */
export function imageCommand(entry: keyof typeof IMAGE_ENTRY_POINTS, ...args: string[]): string[] {
  return ["node", IMAGE_ENTRY_POINTS[entry], ...args];
}

/**
 * What a stack runs, exported as its `release` output: the service image and, when its tag is a commit
 * id (the workflow's image job tags `:<github.sha>`), that commit. scripts/ci/deploy.ts reads it before
 * an update: it is the release a failed one rolls back to.
 */
export function releaseOf(image: string): { image: string; commit?: string } {
  const commit = /:([0-9a-f]{40})$/.exec(image)?.[1];
  return { image, ...(commit ? { commit } : {}) };
}
