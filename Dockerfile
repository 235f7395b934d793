# The ShopFDS service image: the reference service, the workers, the scheduler, the migrations, the seed
# and admin tools and the dev Slack sink all run from it (components/service/image.ts lists the entry
# points; components/service, components/jobs and index.ts run them). Built and pushed by CI
# (.github/workflows/ci.yml, job "image") as ghcr.io/shopfds/shopfds-service:<commit> and :latest.
#
#   docker build -t shopfds-service:dev .
#   docker run --rm -e SHOPFDS_OUTPUTS_FILE=/run/secrets/shopfds-outputs.json \
#     -v "$PWD/.local-stack/dev/outputs.json:/run/secrets/shopfds-outputs.json:ro" shopfds-service:dev
#
# It runs compiled JavaScript: the runtime package (@shopfds/runtime) and the service package, each built
# with tsc, with the service's production dependencies only (no TypeScript, no tsx, no Pulumi).
# tests/unit/service-image.test.ts repeats these steps without Docker and starts the result.

# 1. Build: both workspaces' dependencies (TypeScript included), then tsc for each.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY runtime/package.json runtime/
COPY service/package.json service/
RUN npm ci --workspace @shopfds/runtime --workspace @shopfds/service --include-workspace-root=false --ignore-scripts --no-audit --no-fund
COPY runtime runtime
COPY service service
RUN npm run build --workspace @shopfds/runtime && npm run build --workspace @shopfds/service

# 2. The service's production dependencies (and the runtime's, through its workspace link). Optional
#    ones are left out too: TypeScript is an optional peer of @pulumi/pulumi, which npm would otherwise keep.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY runtime/package.json runtime/
COPY service/package.json service/
RUN npm ci --omit=dev --omit=optional --workspace @shopfds/service --include-workspace-root=false --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY runtime/package.json runtime/
COPY --from=build /app/runtime/dist runtime/dist
COPY service/package.json service/
COPY --from=build /app/service/dist service/dist
# The node image's unprivileged user (uid 1000), which the stacks' runAs also names.
USER node
EXPOSE 8080 9464
CMD ["node", "service/dist/bin/service.js", "--port", "8080"]
