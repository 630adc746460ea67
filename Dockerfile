# syntax=docker/dockerfile:1
# rtc-edge: one image for every role. `docker run <image> gateway|socket|scaler|dev` (default: dev).
#
# Debian bookworm, not Alpine: the uWebSockets.js binary links against glibc (bookworm has 2.36).
# Node 20 exactly: the uWebSockets.js package ships binaries per Node ABI (20 = ABI 115, no Node 22 build).
# Pinned by digest: a rebuild gets the same base, and a re-pushed tag cannot change it silently. To update
# (a new Node 20 patch or Debian security fixes): `docker buildx imagetools inspect node:20-bookworm-slim`,
# take the top-level "Digest:" (the multi-arch index, so amd64 and arm64 both resolve), replace it here,
# rebuild and run the tests. `--build-arg NODE_IMAGE=...` overrides it for one build.
ARG NODE_IMAGE=node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0

# --- build: install with devDependencies (the `prepare` script runs tsc into dist/), then drop them.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY tsconfig.json ./
# The directories tsconfig.json compiles, except examples/ (demo clients and a sample handler: not runtime code).
COPY src ./src
COPY app ./app
COPY gateway ./gateway
COPY socket ./socket
COPY scaler ./scaler
RUN npm ci --no-audit --no-fund \
 && test -f dist/app/cli.js \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: production dependencies and compiled JavaScript only, owned by root, run as `node`.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The `node` user of the official image, numerically (uid/gid 1000): a numeric USER lets Kubernetes'
# runAsNonRoot verify it without a runAsUser; the chart's podSecurityContext uses the same ids.
USER 1000:1000
EXPOSE 8080 9090
# Exec form, node as PID 1: no shell in between that would swallow SIGTERM. The CLI installs SIGTERM and
# SIGINT handlers (PID 1 gets no default signal actions, so without them SIGTERM would be ignored) that
# run the role's graceful close (socket: drain), and the roles spawn no child processes, so there are no
# zombies to reap and no need for tini.
ENTRYPOINT ["node", "dist/app/cli.js"]
CMD ["dev"]
