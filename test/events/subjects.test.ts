import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  dlqStreamSubject,
  dlqSubject,
  eventSubject,
  jobFilter,
  jobsStreamSubject,
  opsSubject,
  parseStoredSubject,
  subjectFor,
} from "../../src/events/subjects.js";
import { JobEventSchema, JobStatus } from "../../src/gen/jobhooks/v1/webhooks_pb.js";

/** NATS wildcard matching, as a stream or a filter applies it: `*` one token, `>` the rest. */
function matches(filter: string, subject: string): boolean {
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return s.length > i;
    if (i >= s.length || (f[i] !== "*" && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

describe("event subjects", () => {
  it("an event is published under <prefix>.<tenant>.<job>.<status>", () => {
    const event = create(JobEventSchema, { tenantId: "acme", jobId: "job_123", status: JobStatus.COMPLETED });
    expect(subjectFor("jobs", event)).toBe("jobs.acme.job_123.completed");
  });

  it("every status reads back from the subject it was published under", () => {
    for (const status of [1, 2, 3, 4, 5] as JobStatus[]) {
      const subject = subjectFor("jobs", create(JobEventSchema, { tenantId: "t", jobId: "j", status }));
      const parsed = parseStoredSubject("jobs", subject);
      expect(parsed).toMatchObject({ tenantId: "t", jobId: "j" });
      expect(parsed && eventSubject("jobs", parsed)).toBe(subject);
    }
  });

  it("a prefix with dots in it is one prefix", () => {
    const parsed = parseStoredSubject("acme.jobs", "acme.jobs.t.j.failed");
    expect(parsed).toEqual({ tenantId: "t", jobId: "j", status: "failed" });
    expect(parsed && eventSubject("acme.jobs", parsed)).toBe("acme.jobs.t.j.failed");
  });

  it.each([
    ["too few tokens", "jobs.acme.completed"],
    ["another prefix", "other.acme.j.completed"],
    ["a prefix that only starts the same", "jobsx.acme.j.completed"],
    ["four tokens", "jobs.acme.j.completed.extra"],
    ["the partitioned layout's shape (moved at start-up, never relayed as is)", "jobs.07.acme.job_1.created"],
    ["the bare prefix", "jobs"],
    ["a dead letter", "jobs_dlq.invalid"],
  ])("a subject with %s is not an event subject", (_, subject) => {
    expect(parseStoredSubject("jobs", subject)).toBeUndefined();
  });
});

describe("stream subjects and filters", () => {
  it("JOBS captures event subjects and nothing of the DLQ or the ops subjects", () => {
    expect(jobsStreamSubject("jobs")).toBe("jobs.*.*.*");
    expect(matches(jobsStreamSubject("jobs"), "jobs.acme.j.created")).toBe(true);
    expect(matches(jobsStreamSubject("jobs"), dlqSubject("jobs", "invalid"))).toBe(false);
    expect(matches(jobsStreamSubject("jobs"), opsSubject("acme", "endpoint.disabled"))).toBe(false);
  });

  it("a job's filter matches its events and no other job's", () => {
    const filter = jobFilter("jobs", "acme", "j1");
    expect(filter).toBe("jobs.acme.j1.*");
    expect(matches(filter, "jobs.acme.j1.completed")).toBe(true);
    expect(matches(filter, "jobs.acme.j2.completed")).toBe(false);
    expect(matches(filter, "jobs.other.j1.completed")).toBe(false);
  });

  it("a dead letter goes to <prefix>_dlq.<reason>, which JOBS_DLQ captures", () => {
    expect(dlqSubject("jobs", "invalid")).toBe("jobs_dlq.invalid");
    expect(dlqStreamSubject("jobs")).toBe("jobs_dlq.>");
    expect(matches(dlqStreamSubject("jobs"), dlqSubject("jobs", "svix_rejected"))).toBe(true);
  });
});

describe("operational webhook subjects", () => {
  it("are jobhooks.ops.<tenant>.<type>, with the type's dots as underscores", () => {
    expect(opsSubject("acme", "message.attempt.exhausted")).toBe(
      "jobhooks.ops.acme.message_attempt_exhausted",
    );
  });

  it("never carry a wildcard or an empty token", () => {
    expect(opsSubject("a*b", "x>y")).toBe("jobhooks.ops.a_b.x_y");
    expect(opsSubject("", "")).toBe("jobhooks.ops._._");
  });
});
