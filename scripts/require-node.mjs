// Refuses to go on under a Node.js older than package.json's `engines` allows, with the one
// command that gets Node 24. `npm run` does not check `engines` (only `npm ci` does, with the
// project's .npmrc engine-strict), and an old Node fails later and obscurely. Plain JavaScript
// with nothing imported, so any Node can run it. Used as `node scripts/require-node.mjs && …`.
const MINIMUM = [22, 12];
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < MINIMUM[0] || (major === MINIMUM[0] && minor < MINIMUM[1])) {
  process.stderr.write(
    `jobhooks needs Node.js ${MINIMUM.join(".")} or later (24 recommended); this is Node ${process.versions.node} (${process.execPath}).\n` +
      "Get Node 24 with this one command, then run yours again in the same shell:\n" +
      "  npm install --global --prefix ~/.local/node24 node@24 && export PATH=~/.local/node24/bin:$PATH\n",
  );
  process.exit(1);
}
