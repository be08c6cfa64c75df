# Worker and HTTP API image; docker-compose.yml picks the process with `command`, the worker by default.
# Debian (glibc) rather than Alpine: the Temporal SDK's native core ships prebuilt for glibc only.
# Node 22 or 24, the supported LTS lines: `--build-arg NODE_IMAGE=node:24-bookworm-slim` for 24.
ARG NODE_IMAGE=node:22-bookworm-slim

# Build: compiles the TypeScript to dist/ and bundles the workflow code, with the dev dependencies.
FROM ${NODE_IMAGE} AS build
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.ts scripts/
COPY src src
COPY workflows workflows
COPY activities activities
RUN npm run build

# Runtime: the compiled JavaScript and the production dependencies only, run by plain node.
FROM ${NODE_IMAGE}

# HOST: the API listens on every interface of the container, which a published port needs (its
# default outside a container is 127.0.0.1). WORKFLOW_BUNDLE_PATH: the worker loads the bundle built
# above instead of bundling the workflow code at every start.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

WORKDIR /app

# Dependencies first, so editing the source does not reinstall them. Installed as root and run as
# `node`: the processes can read their code but not change it.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY --from=build /build/dist dist
COPY bin bin

USER node
EXPOSE 3000
CMD ["node", "dist/src/worker.js"]
