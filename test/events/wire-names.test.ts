import { headers as natsHeaders } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { isPublisherControlHeader } from "../../src/events/wire-names.js";
import { publisherHeaders } from "../../src/nats/publisher-headers.js";

describe("a publisher's control headers never travel onward (dead letters, replays)", () => {
  it("JetStream controls and jobhooks' own headers are control headers, however they are spelt", () => {
    for (const name of [
      "Nats-Expected-Stream",
      "nats-ttl",
      "NATS-MSG-ID",
      "Jobhooks-Dead-Reason",
      "jobhooks-original-subject",
      "JOBHOOKS-DEAD-AT",
    ]) {
      expect(isPublisherControlHeader(name), name).toBe(true);
    }
  });

  it("a publisher's own headers are kept, including ones that merely mention nats or jobhooks", () => {
    for (const name of [
      "Content-Type",
      "X-Publisher",
      "traceparent",
      "X-Nats-Trace",
      "My-Jobhooks-Id",
      "Natsy",
    ]) {
      expect(isPublisherControlHeader(name), name).toBe(false);
    }
  });

  it("the copy keeps every value of the publisher's headers and drops the controls in any case", () => {
    const h = natsHeaders();
    h.set("nats-expected-last-sequence", "7");
    h.set("Nats-TTL", "1s");
    h.set("jobhooks-dead-reason", "forged");
    h.set("Content-Type", "application/json");
    h.append("X-Tag", "a");
    h.append("X-Tag", "b");
    const copy = publisherHeaders(h);
    expect([...copy].map(([k, v]) => [k, v])).toEqual([
      ["Content-Type", ["application/json"]],
      ["X-Tag", ["a", "b"]],
    ]);
    expect([...publisherHeaders(undefined)]).toEqual([]);
  });
});
