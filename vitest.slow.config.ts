import { defineConfig } from "vitest/config";

// Slow drills (`npm run test:slow`): minutes each, not part of `npm test` or CI. One file at a time:
// they measure memory and throughput, which a neighbour on a 2-core machine would distort.
export default defineConfig({
  test: {
    include: ["test/**/*.slow.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    testTimeout: 600_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
