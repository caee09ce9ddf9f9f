import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { root } from "./child.js";

// On a machine whose Node is older than `engines` allows, the first command refuses at once and
// says how to get Node 24, instead of a wall of EBADENGINE warnings and an untested run. The
// machine's own Node (Debian's /usr/bin/node, 20 here) plays the older one; elsewhere this skips.

const OLD_NODE = process.env.OLD_NODE_BIN ?? "/usr/bin/node";
const oldVersion = existsSync(OLD_NODE)
  ? spawnSync(OLD_NODE, ["-p", "process.versions.node"], { encoding: "utf8" }).stdout.trim()
  : "";
const [major = 0, minor = 0] = oldVersion.split(".").map(Number);
const isOld = oldVersion !== "" && (major < 22 || (major === 22 && minor < 12));
const NODE_24 =
  "npm install --global --prefix ~/.local/node24 node@24 && export PATH=~/.local/node24/bin:$PATH";

/** Runs a command of the README with the old Node first on PATH, as on such a machine. */
function withOldNode(command: string) {
  return spawnSync("bash", ["-c", command], {
    cwd: root,
    env: { ...process.env, PATH: `${path.dirname(OLD_NODE)}${path.delimiter}${process.env.PATH}` },
    encoding: "utf8",
    timeout: 60_000,
  });
}

describe.skipIf(!isOld)(`on Node ${oldVersion || "(none older here)"}`, () => {
  it("npm run dev, npm test and npm run jobhooks refuse with the one command that brings Node 24", () => {
    for (const command of ["npm run dev -- --demo", "npm test", "npm run jobhooks -- dlq list"]) {
      const result = withOldNode(command);
      expect(result.status, command).not.toBe(0);
      expect(result.stderr, command).toContain(
        `jobhooks needs Node.js 22.12 or later (24 recommended); this is Node ${oldVersion}`,
      );
      expect(result.stderr, command).toContain(`\n  ${NODE_24}\n`);
    }
  }, 120_000);

  it("npm ci refuses in one error naming the version it needs (engine-strict), before installing anything", () => {
    const result = withOldNode("npm ci --dry-run");
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("EBADENGINE");
    expect(result.stderr).toContain('Required: {"node":">=22.12"}');
    expect(result.stderr).not.toMatch(/npm warn EBADENGINE/);
  }, 60_000);

  it("the README gives that same command next to the first one", () => {
    const readme = readFileSync(path.join(root, "README.md"), "utf8");
    expect(readme).toContain(`\`\`\`sh\n${NODE_24}\n\`\`\``);
  });
});
