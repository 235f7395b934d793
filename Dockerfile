# The ShopFDS service image: the reference service, the workers, the scheduler, the migrations and the
# dev Slack sink all run from it (see components/service, components/jobs, index.ts). Built and pushed
# by CI (.github/workflows/ci.yml, job "image") as ghcr.io/shopfds/shopfds-service:<commit> and :latest.
#
#   docker build -t ghcr.io/shopfds/shopfds-service:dev .
#   docker run --rm -e SHOPFDS_OUTPUTS_FILE=/run/secrets/shopfds-outputs.json \
#     -v "$PWD/.local-stack/dev/outputs.json:/run/secrets/shopfds-outputs.json:ro" ghcr.io/shopfds/shopfds-service:dev
#
# TypeScript runs through tsx (a production dependency), so the image holds the same sources the tests
# ran, with no separate build output to drift from them.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; no install scripts (none of them is needed at run time).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY runtime ./runtime
COPY components ./components
COPY migrations ./migrations
COPY scripts ./scripts
# The node image's unprivileged user (uid 1000), which the stacks' runAs also names.
USER node
EXPOSE 8080 9464
CMD ["node", "--import", "tsx", "scripts/service.ts", "--port", "8080"]
