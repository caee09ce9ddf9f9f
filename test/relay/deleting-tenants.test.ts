import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toSvixMessage } from "../../src/events/webhook-payload.js";
import { JobEventSchema, JobStatus } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { createLogger } from "../../src/log/logger.js";
import {
  type DeletedTenants,
  openTenantDeletionMarks,
  type TenantDeletionMarks,
  watchDeletedTenants,
} from "../../src/nats/tenant-deletions.js";
import { dropWhileDeleting } from "../../src/relay/deleting-tenants.js";
import { createSvixGateway, type SvixGateway } from "../../src/svix/gateway.js";
import { until } from "../support/poll.js";

// An event the relay took before a deletion began must not reach Svix while the deletion runs
// (it would create the deleted tenant's application again); once the deletion completes, the
// tenant's new events go through.

let nats: NatsServer;
let standIn: SvixStandIn;
let nc: NatsConnection;
let marks: TenantDeletionMarks;
let deleted: DeletedTenants;
let svix: SvixGateway;

const message = (eventId: string) =>
  toSvixMessage(
    create(JobEventSchema, {
      eventId,
      tenantId: "leaving",
      jobId: "j1",
      status: JobStatus.CREATED,
      occurredAt: timestampFromMs(Date.now()),
    }),
    1,
  );

beforeAll(async () => {
  nats = await startNatsServer();
  standIn = await startSvixStandIn({ deliver: false });
  nc = await connect({ servers: nats.url });
  marks = await openTenantDeletionMarks(nc, { replicas: 1 });
  deleted = await watchDeletedTenants(nc, { replicas: 1, subjectPrefix: "jobs" });
  const log = createLogger("silent");
  svix = dropWhileDeleting(
    createSvixGateway({ token: standIn.token, serverUrl: standIn.url, log }),
    deleted,
    log,
  );
});

afterAll(async () => {
  deleted?.stop();
  await nc?.close();
  await standIn?.close();
  await nats?.dispose();
});

describe("the relay's Svix client during a deletion", () => {
  it("answers a deleting tenant's event as sent without sending it, and sends again once the deletion completed", async () => {
    await marks.markDeleting("leaving");
    await until("the mark seen", () => deleted.isDeleting("leaving"));
    expect(deleted.drops("jobs.leaving.j1.created", 10)).toBe(true);
    expect(await svix.createMessage("leaving", message("held-before"))).toEqual({ kind: "created" });
    expect(standIn.state.apps().map((a) => a.uid)).not.toContain("leaving");
    expect(deleted.isDeleting("staying")).toBe(false);

    await marks.markDeleted("leaving", 10);
    await until("the completion seen", () => !deleted.isDeleting("leaving"));
    // Stored up to the deletion's last sequence: dropped; later: the tenant starting afresh.
    expect(deleted.drops("jobs.leaving.j1.created", 10)).toBe(true);
    expect(deleted.drops("jobs.leaving.j1.created", 11)).toBe(false);
    expect(deleted.drops("jobs.staying.j1.created", 5)).toBe(false);
    expect(await svix.createMessage("leaving", message("afresh"))).toEqual({ kind: "created" });
    expect(standIn.state.messages("leaving").map((m) => m.eventId)).toEqual(["afresh"]);
  });
});
