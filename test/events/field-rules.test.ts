import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PROTO_DOCUMENTED } from "../../src/events/field-rules.js";

/**
 * The comment above each message and field of webhooks.proto, keyed `Message` and `Message.field`,
 * with the `//` markers and line breaks folded into single spaces.
 */
function protoComments(source: string): Map<string, string> {
  const comments = new Map<string, string>();
  let pending: string[] = [];
  let message = "";
  for (const raw of source.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("//")) {
      pending.push(line.replace(/^\/\/\s?/, ""));
      continue;
    }
    const opens = /^(?:message|enum|service)\s+(\w+)\s*\{/.exec(line);
    const field = /^(?:optional\s+|repeated\s+)?(?:map<[^>]+>|[\w.]+)\s+(\w+)\s*=\s*\d+/.exec(line);
    if (opens?.[1]) {
      message = opens[1];
      comments.set(message, pending.join(" "));
    } else if (field?.[1] && message) {
      comments.set(`${message}.${field[1]}`, pending.join(" "));
    }
    pending = [];
  }
  return comments;
}

describe("webhooks.proto documents the field rules jobhooks enforces (field-rules.ts)", () => {
  const comments = protoComments(readFileSync("proto/jobhooks/v1/webhooks.proto", "utf8"));

  it.each(PROTO_DOCUMENTED.map((d) => [d.at, d.says]))("%s says: %s", (at, says) => {
    expect(comments.has(at), `${at} is declared in webhooks.proto`).toBe(true);
    expect(comments.get(at)).toContain(says);
  });

  it("a figure changed in the proto alone no longer matches the table", () => {
    const source = readFileSync("proto/jobhooks/v1/webhooks.proto", "utf8");
    const edited = protoComments(source.replace("at most 64 entries", "at most 65 entries"));
    const broken = PROTO_DOCUMENTED.filter((d) => !edited.get(d.at)?.includes(d.says)).map((d) => d.at);
    expect(broken).toEqual(["JobEvent.metadata"]);
  });
});
