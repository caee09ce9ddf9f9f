# syntax=docker/dockerfile:1
# jobhooks as a container: `docker build -t jobhooks .`, then
#   docker run -p 8080:8080 -e NATS_URL=nats://nats:4222 -e SVIX_TOKEN=… \
#     -e JOBHOOKS_SERVICE_TOKENS_FILE=/run/secrets/service-tokens jobhooks
# Other commands run the same image: `docker run --rm jobhooks dlq list`.
ARG NODE_VERSION=24

# Build: every dependency, to compile TypeScript to dist/.
FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# tsconfig.build.json compiles production code only: the local stack and the Svix stand-in
# (src/local/, `jobhooks dev`, `jobhooks svix-stand-in`) run from a clone and stay out of dist/.
RUN npm run build && test ! -e dist/local && test ! -e dist/cli/local.js

# Runtime: production dependencies and the compiled code only.
FROM node:${NODE_VERSION}-slim AS runtime
# A heap limit keeps the relay's RSS flat under 200 MB while it drains any backlog (bench/relay.ts
# measures it with these flags: 167 MB at 200,000 events); the live heap is a few tens of MB. The
# young generation stays at V8's usual 16 MB: at 4 MB the relay spent a fifth of its CPU in
# scavenges (0.35 -> 0.29 ms of CPU per event). Raise --max-old-space-size with the container's
# memory limit (about 75 % of it).
ENV NODE_ENV=production \
    JOBHOOKS_ADDR=0.0.0.0:8080 \
    NODE_OPTIONS="--max-semi-space-size=16 --max-old-space-size=192"
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY proto ./proto
# The image's unprivileged user; the app only reads its files and listens on a high port.
USER node
EXPOSE 8080
# Liveness only (/readyz would restart the container during a NATS outage it rides out by itself).
# The slim image has no curl: Node's fetch does it, on the port JOBHOOKS_ADDR names.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.JOBHOOKS_ADDR||':8080').split(':').pop();fetch('http://127.0.0.1:'+p+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
