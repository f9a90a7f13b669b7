# Tally's two images, built from the repository root. They hold the same compiled package and differ only in their
# default command (the chart sets the command itself), so one Dockerfile builds both, as two targets:
#   docker build --target operator --build-arg VERSION=0.1.0 -t tally-operator:0.1.0 .
#   docker build --target runtime  --build-arg VERSION=0.1.0 -t tally-runtime:0.1.0 .
# The runtime image is also what the operator's rollup CronJobs run (`tally rollup`, the image's ENTRYPOINT).
#
# Build arguments: NODE_IMAGE (the Node.js 24 base), VERSION (the image's version label). RUN --mount needs BuildKit
# (Docker 23 or newer builds with it by default) or buildah.
# npm configuration (a private registry, its credentials, a CA file setting): pass your .npmrc as a build secret,
#   docker build --secret id=npmrc,src=$HOME/.npmrc ...
# It is used by the two `npm ci` steps only and never stored in an image layer.
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: every dependency, the product folders compiled to dist/ (no tests: tsconfig.build.json) ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY lib ./lib
COPY store ./store
COPY runtime ./runtime
COPY operator ./operator
COPY cli ./cli
COPY client/src ./client/src
RUN npx tsc -p tsconfig.build.json

# --- production dependencies only ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- what both images hold: dist/ and production node_modules, owned by root, run by a numeric non-root user.
# Nothing is written outside /tmp (the chart mounts an emptyDir there): a read-only root filesystem works. ---
FROM ${NODE_IMAGE} AS package
ARG VERSION=0.1.0
# No org.opencontainers.image.source: set it with --label where your copy of the repository is published.
LABEL org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER 10001:10001
ENTRYPOINT ["node", "dist/cli/main.js"]

FROM package AS operator
LABEL org.opencontainers.image.title="tally-operator" \
      org.opencontainers.image.description="Tally operator: reconciles CounterNamespaces into Cassandra tables, ConfigMaps and rollup CronJobs"
EXPOSE 8081
CMD ["operator"]

# The last stage: what a build without --target gives.
FROM package AS runtime
LABEL org.opencontainers.image.title="tally-runtime" \
      org.opencontainers.image.description="Tally runtime: the distributed counter API, and the rollup the operator's CronJobs run"
EXPOSE 8080
CMD ["serve", "--configmaps"]
