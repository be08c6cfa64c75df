# Worker and HTTP API image; docker-compose.yml picks the process with `command`.
# Debian (glibc) rather than Alpine: the Temporal SDK's native core ships prebuilt for glibc only.
FROM node:20-bookworm-slim

# HOST: the API listens on every interface of the container, which a published port needs (its
# default outside a container is 127.0.0.1).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

WORKDIR /app
RUN chown node:node /app
USER node

# Dependencies first, so editing the source does not reinstall them. tsx runs the TypeScript
# sources directly, so there is no build step and dev dependencies are not needed.
COPY --chown=node:node package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY --chown=node:node . .

EXPOSE 3000
CMD ["npx", "tsx", "src/worker.ts"]
