import { defineConfig } from "vitest/config";

// Integration tests start real nats-server processes and servers on loopback; on a 2-core machine
// running too many files at once only makes every timeout flakier.
export default defineConfig({
  test: {
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // A temp folder per run; its teardown fails the run if a test left anything there.
    globalSetup: ["test/support/private-tmpdir.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "unit+integration",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.slow.test.ts", "test/e2e/**", "node_modules/**"],
        },
      },
      {
        // Each e2e file runs a whole `jobhooks dev` on the default ports (8080, 4222, 8071) and
        // checks what a newcomer sees of them ("8080 is taken"); two at once would see each other.
        // So they run one file at a time, after the rest.
        extends: true,
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
