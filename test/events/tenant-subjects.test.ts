import { describe, expect, it } from "vitest";
import {
  dlqStreamSubject,
  dlqSubject,
  jobsStreamSubject,
  tenantDlqFilter,
  tenantDlqSubject,
  tenantFilter,
  untenantedDlqFilter,
} from "../../src/events/subjects.js";
import { matches } from "../support/subject-match.js";

// DeleteTenant removes a tenant's messages by these filters alone: each must take all of that
// tenant's and nothing of another's.
describe("a tenant's subjects", () => {
  it("a dead letter is filed as <prefix>_dlq.<reason>.<tenant>, still captured by JOBS_DLQ", () => {
    expect(tenantDlqSubject("jobs", "invalid", "acme")).toBe("jobs_dlq.invalid.acme");
    expect(matches(dlqStreamSubject("jobs"), tenantDlqSubject("jobs", "invalid", "acme"))).toBe(true);
  });

  it("the tenant's dead-letter filter takes its letters of every reason and no other tenant's", () => {
    const f = tenantDlqFilter("jobs", "acme");
    expect(matches(f, tenantDlqSubject("jobs", "invalid", "acme"))).toBe(true);
    expect(matches(f, tenantDlqSubject("jobs", "svix_rejected", "acme"))).toBe(true);
    expect(matches(f, tenantDlqSubject("jobs", "invalid", "acme2"))).toBe(false);
    expect(matches(f, dlqSubject("jobs", "acme"))).toBe(false);
  });

  it("letters filed by reason alone (the layout before) are told apart from those filed by tenant", () => {
    const f = untenantedDlqFilter("jobs");
    expect(matches(f, dlqSubject("jobs", "invalid"))).toBe(true);
    expect(matches(f, tenantDlqSubject("jobs", "invalid", "acme"))).toBe(false);
  });

  it("the tenant's event filter takes its events and no other tenant's", () => {
    expect(matches(tenantFilter("jobs", "acme"), "jobs.acme.j1.created")).toBe(true);
    expect(matches(tenantFilter("jobs", "acme"), "jobs.other.j1.created")).toBe(false);
    expect(matches(jobsStreamSubject("jobs"), "jobs.acme.j1.created")).toBe(true);
  });
});
