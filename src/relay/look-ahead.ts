import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { parseStoredSubject, tenantFilter, tenantOfEventSubject } from "../events/subjects.js";
import type { Logger } from "../log/logger.js";
import { BoundedMap } from "../resilience/bounded-map.js";
import { sleep } from "../resilience/clock.js";
import type { HeldMessage } from "./pipeline.js";
import { sameTick } from "./same-tick.js";

/**
 * Seeing past a burst. The shared consumer hands out events in stream order, so 200,000 events one
 * tenant stored at once sit in front of every other tenant's: its window fills with them and the
 * fair scheduler has nobody else to be fair to. While the consumer is that far behind (its window
 * full), the look-ahead reads the first stored events of the other tenants directly from the
 * stream — a direct get of the first message on `<prefix>.<tenant>.*.*`, however far back it is —
 * and hands them to the same pipeline, where the scheduler gives them their share. The burst is
 * never copied or read twice: only tenants with next to nothing held here are read past it.
 *
 * Which tenants: every publish is also seen on core NATS (a queue group, so each publish reaches
 * one replica), which names its tenant at once; `discover` adds the tenants that stored events
 * while no replica ran (a stream-info subject count, run rarely).
 *
 * Settling: a message read here was never delivered by the consumer, so it cannot be acked. It
 * leaves the stream by deletion once Svix accepted it (or it was dead-lettered) — the same moment
 * an ack would have removed it from the work queue. A crash before that leaves it stored, and the
 * consumer (or a look-ahead) sends it again: Svix's idempotency key makes that harmless. Should the
 * consumer deliver it elsewhere meanwhile, that replica finds it gone, or sends it once more in
 * vain. Per-job order is the pipeline's rule and holds whoever reads a message. A retry is a
 * pause before it is read again.
 */
export interface LookAheadOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  stream: string;
  subjectPrefix: string;
  /** Whether the shared consumer is behind: only then is anything read past it. */
  behind(): boolean;
  /** Messages of `tenant` this process holds now (from either source). */
  heldOf(tenant: string): number;
  isHeld(seq: number): boolean;
  /** Messages the look-ahead may hold at once. */
  maxHeld: number;
  /** Relays one message to its end; must not throw. */
  onMessage(m: HeldMessage): Promise<void>;
  /** Tenants with events stored, for those noticed while no replica ran. */
  discover(): Promise<string[]>;
  log: Logger;
}

export interface LookAhead {
  /** Messages read past the consumer and not yet settled. */
  readonly held: number;
  stop(): Promise<void>;
}

/** Events of one tenant held here at most, counting those the consumer delivered. */
const PER_TENANT = 2;
/** Pause between looks while the consumer is behind. */
const TICK_MS = 5;
/** Tenants being read at once at most (each read is a few direct gets, sent together). */
const READS_AT_ONCE = 256;
/** Tenants remembered at most (the oldest notice is dropped first). */
const NOTICED_MAX = 20_000;
/** After a look finds nothing new, the next one waits this long, doubling; after EMPTY_LOOKS_MAX
 * such looks the tenant is forgotten until its next publish. (A publish can be seen a moment
 * before the stream has stored it, so one empty look is not the end.) */
const EMPTY_LOOK_PAUSE_MS = 20;
const EMPTY_LOOKS_MAX = 4;

interface Notice {
  at: number;
  nextLookAt: number;
  emptyLooks: number;
}
/** How often tenants that stored events while no replica ran are looked for, while behind. */
const DISCOVER_EVERY_MS = 30_000;
/** Look-ahead messages retried later are remembered at most this many. */
const RETRIES_MAX = 10_000;

export const LOOK_AHEAD_QUEUE = "jobhooks-relay-look-ahead";

export function startLookAhead(o: LookAheadOptions): LookAhead {
  /** Tenants to look at: when noticed, when to look next, and how many looks found nothing new. */
  const noticed = new BoundedMap<string, Notice>(NOTICED_MAX);
  const retries = new BoundedMap<number, { count: number; notBefore: number }>(RETRIES_MAX);
  /** Sequences relayed and being deleted (bounded, oldest dropped). */
  const settled = new BoundedMap<number, true>(RETRIES_MAX);
  const running = new Set<Promise<void>>();
  /** Tenants whose stored events are being read now, and those reads. */
  const reading = new Map<string, Promise<void>>();
  const together = sameTick();
  const stopping = new AbortController();
  let lastDiscovery = Number.NEGATIVE_INFINITY;

  const notice = (tenant: string, at: number) => {
    noticed.set(tenant, { at, nextLookAt: at, emptyLooks: 0 });
  };

  const sub: Subscription = o.nc.subscribe(`${o.subjectPrefix}.*.*.*`, {
    queue: LOOK_AHEAD_QUEUE,
    callback: (_err, msg) => {
      const tenant = tenantOfEventSubject(o.subjectPrefix, msg.subject);
      if (tenant !== undefined) notice(tenant, Date.now());
    },
  });

  function held(sm: StoredMsg, firstOfJob: boolean): HeldMessage {
    const retry = retries.get(sm.seq);
    return {
      seq: sm.seq,
      firstOfJob,
      subject: sm.subject,
      data: sm.data,
      headers: sm.header,
      storedAtMs: sm.time.getTime(),
      deliveryCount: (retry?.count ?? 0) + 1,
      ack() {
        retries.delete(sm.seq);
        // Until JetStream has applied the deletion a look could find it again and send it twice.
        settled.set(sm.seq, true);
        o.jsm.streams.deleteMessage(o.stream, sm.seq, false).catch((err: unknown) => {
          // Left stored: the consumer delivers it later and Svix recognises it (409).
          o.log.debug({ err, stream_seq: sm.seq }, "look-ahead could not remove a relayed event");
        });
      },
      nak(delayMs = 0) {
        retries.set(sm.seq, { count: (retry?.count ?? 0) + 1, notBefore: Date.now() + delayMs });
      },
      working() {
        // Not delivered by the consumer: nothing would redeliver it.
      },
    };
  }

  function hold(sm: StoredMsg, firstOfJob: boolean): void {
    const done = o.onMessage(held(sm, firstOfJob)).finally(() => running.delete(done));
    running.add(done);
  }

  /** Reads the tenant's first stored events this process does not hold yet; how many it took. */
  async function readTenant(tenant: string, now: number): Promise<number> {
    let want = PER_TENANT - o.heldOf(tenant);
    let taken = 0;
    let from = 1;
    // The jobs of the tenant's events stored before the one read: walking from the tenant's first
    // stored event, an event whose job is not among them is its job's first stored event too, so
    // the pipeline need not ask the stream again whose turn it is.
    const jobsBefore = new Set<string>();
    for (let asks = 0; want > 0 && asks < 2 * PER_TENANT && running.size < o.maxHeld; asks++) {
      await together();
      if (stopping.signal.aborted) break;
      const sm = await o.jsm.direct.getMessage(o.stream, {
        next_by_subj: tenantFilter(o.subjectPrefix, tenant),
        seq: from,
      });
      if (!sm) break;
      from = sm.seq + 1;
      const job = parseStoredSubject(o.subjectPrefix, sm.subject)?.jobId;
      const firstOfJob = job !== undefined && !jobsBefore.has(job);
      if (job !== undefined) jobsBefore.add(job);
      if (o.isHeld(sm.seq) || settled.has(sm.seq) || (retries.get(sm.seq)?.notBefore ?? 0) > now) continue;
      hold(sm, firstOfJob);
      want--;
      taken++;
    }
    return taken;
  }

  /** Looks at one tenant and decides when to look again (or to forget it). */
  async function lookAt(tenant: string, n: Notice, now: number): Promise<void> {
    const taken = await readTenant(tenant, now);
    if (taken > 0) {
      n.emptyLooks = 0;
      n.nextLookAt = now;
    } else if (++n.emptyLooks >= EMPTY_LOOKS_MAX) {
      if (noticed.get(tenant) === n) noticed.delete(tenant);
    } else {
      n.nextLookAt = now + EMPTY_LOOK_PAUSE_MS * 2 ** (n.emptyLooks - 1);
    }
  }

  function look(): void {
    const now = Date.now();
    if (now - lastDiscovery >= DISCOVER_EVERY_MS) {
      // In the background: listing a big burst's subjects takes a while, and the tenants already
      // noticed must not wait for it.
      lastDiscovery = now;
      o.discover().then(
        (tenants) => {
          for (const tenant of tenants) if (!noticed.has(tenant)) notice(tenant, Date.now());
        },
        (err: unknown) => o.log.debug({ err }, "look-ahead could not list the tenants waiting"),
      );
    }
    // Each tenant's read runs on its own: one slow answer (a stream busy storing a burst) must
    // not hold up the looks at every other tenant until the next round.
    for (const [tenant, n] of noticed) {
      if (reading.size >= READS_AT_ONCE || running.size >= o.maxHeld) break;
      if (reading.has(tenant) || n.nextLookAt > now || o.heldOf(tenant) >= PER_TENANT) continue;
      const read = lookAt(tenant, n, now)
        .catch((err: unknown) => {
          o.log.debug({ err, tenant }, "look-ahead could not read a tenant's events; trying again");
          n.nextLookAt = Date.now() + 100;
        })
        .finally(() => reading.delete(tenant));
      reading.set(tenant, read);
    }
  }

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await sleep(TICK_MS, stopping.signal);
      if (stopping.signal.aborted) continue;
      if (!o.behind()) {
        // Caught up: the consumer reaches every tenant soon. Forget notices that have aged (not
        // at once: being behind comes and goes while a burst drains).
        const cutoff = Date.now() - 10_000;
        for (const [tenant, n] of noticed) if (n.at < cutoff) noticed.delete(tenant);
        continue;
      }
      look();
    }
  })();

  return {
    get held() {
      return running.size;
    },
    async stop() {
      stopping.abort();
      sub.unsubscribe();
      await loop;
      await Promise.all(reading.values());
      await Promise.all([...running]);
    },
  };
}
