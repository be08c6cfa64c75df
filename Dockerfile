# Worker and HTTP API image; docker-compose.yml picks the process with `command`.
# Debian (glibc) rather than Alpine: the Temporal SDK's native core ships prebuilt for glibc only.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
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
