import { defineConfig } from "vitest/config";

// Integration tests start real nats-server processes and servers on loopback; on a 2-core machine
// running too many files at once only makes every timeout flakier.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/**/*.slow.test.ts", "node_modules/**"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
