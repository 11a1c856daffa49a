# syntax=docker/dockerfile:1
# The Switchyard worker: `switchyard worker` consuming node jobs from Redis. Multi-stage: the build stage
# compiles dist/ with the dev toolchain; the runtime stage has production dependencies, dist/, bin/ and
# workflows/ only, and runs as the unprivileged `node` user.
#
#   docker build --platform linux/arm64 -t switchyard-worker .
#   docker run --rm -e REDIS_URL=redis://host.docker.internal:6379 switchyard-worker
#
# bin/switchyard.mjs runs dist/cli.mjs here: there is no src/ and no tsx in the runtime image.
ARG NODE_IMAGE=node:22-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; the build runs below.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
# The build expands src/store/lua/*.lua into scripts.generated.ts (a no-op when it is current), then bundles.
COPY scripts/build.mjs scripts/generate-lua.ts scripts/
COPY src/ src/
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. --ignore-scripts: the root `prepare` (a build) needs dev dependencies,
# and no production dependency needs an install script (msgpackr's native extract is optional).
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
COPY package.json ./
COPY bin/ bin/
COPY workflows/ workflows/
# The health check asks the worker itself, not Redis: `switchyard health` passes while the worker's
# heartbeat file (rewritten every 5 s from its event loop, not while draining) is fresh, so a hung worker
# is replaced and a Redis outage does not replace every task at once. The task definition runs the same.
ENV SWITCHYARD_HEARTBEAT_FILE=/tmp/switchyard-heartbeat
USER node
# The worker drains on SIGTERM: it takes no new node jobs and lets running ones finish (give it up to
# `docker stop -t 120`, or the ECS StopTimeout), then exits 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["node", "bin/switchyard.mjs", "health", "--max-age-seconds", "30"]
ENTRYPOINT ["node", "bin/switchyard.mjs"]
CMD ["worker", "--blueprints", "workflows"]
