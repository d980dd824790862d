# syntax=docker/dockerfile:1
# One image for the controller (`manager`, the default) and for the runner subcommands the backup/restore
# Job pods execute (`backup`, `verify`, `restore`, `test-restore`, `prune`). The runners shell out to
# pg_dump/pg_restore/psql, which is why the runtime is Debian bookworm-slim and not distroless.
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: full dependency tree; tsc type-checks and compiles to dist/operator/ (the CLI runs it), esbuild
# bundles the entry point into dist/bundle/ (what ENTRYPOINT runs: hack/bundle.ts) ---
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY hack/bundle.ts ./hack/bundle.ts
COPY operator ./operator
RUN npm run build
# The entry point must exist: a build that skipped the bundle would otherwise ship without it.
RUN test -f dist/bundle/main.js

# --- deps: production node_modules only, resolved exactly from the lockfile ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime ---
FROM ${NODE_IMAGE}
# postgresql-client is bookworm's PostgreSQL 15 client (pg_dump, pg_restore, psql). tini is PID 1 so the
# pg_dump/pg_restore children of a runner are reaped and SIGTERM reaches node.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && pg_dump --version && pg_restore --version && psql --version \
 && groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot
ENV NODE_ENV=production \
    HOME=/home/nonroot
WORKDIR /app
# package.json carries "type": "module", which node needs to load dist/ as ESM. node_modules stays: the CLI
# (dist/operator/cli/bin.js) needs it, and the bundle resolves re2js (the bodyMatch worker) and pg's optional
# pg-native there (hack/bundle.ts).
COPY --chown=root:root package.json package-lock.json ./
COPY --chown=root:root --from=deps /app/node_modules ./node_modules
COPY --chown=root:root --from=build /src/dist ./dist
LABEL org.opencontainers.image.title="nxt-rollback-operator" \
      org.opencontainers.image.description="Kubernetes operator for safe rollbacks and PostgreSQL backups" \
      org.opencontainers.image.licenses="Apache-2.0"
# Numeric uid so the kubelet can verify runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 8080 8081
# The bundle of operator/main.ts (hack/bundle.ts): a runner Job pod loads a few chunks, not ~50 modules.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/bundle/main.js"]
CMD ["manager"]
