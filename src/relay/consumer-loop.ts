import type { Consumer, ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "../log/logger.js";
import type { NatsLink } from "../nats/connection.js";
import { type BackoffOptions, backoffMs } from "../resilience/backoff.js";
import { sleep } from "../resilience/clock.js";
import { createAckResender, withAckRemembered } from "./ack-resender.js";

export interface ConsumerLoop {
  /** Whether the loop is attached to its consumer right now. */
  readonly consuming: boolean;
  /** Messages taken from JetStream whose handling has not finished. */
  readonly held: number;
  /** The consumer has more waiting than one window beyond what it delivered (as of its last
   * message), or the loop waits for room: what a window can take does not reach the rest. */
  readonly behind: boolean;
  /**
   * Stops taking messages: what the client had already pulled is handed back (nak, no delay),
   * handlers still running are awaited. Resolves when the loop has ended.
   */
  stop(): Promise<void>;
}

export interface ConsumerLoopOptions {
  nats: NatsLink;
  js: JetStreamClient;
  stream: string;
  consumer: string;
  /** Upper bound on messages held (handlers running) at once; the loop pulls no further. */
  maxHeld: number;
  /** Handles one message to its end (ack, nak or dead letter); must not throw. */
  onMessage(m: JsMsg): Promise<void>;
  /** Runs with every held message each `keepAliveMs`, so JetStream does not redeliver them. */
  keepAliveMs: number;
  onConsuming?(on: boolean): void;
  log: Logger;
}

/** Pull request lifetime: the server ends a pull after this, and the loop issues the next. */
const PULL_EXPIRES_MS = 2_000;
/** The server sends a heartbeat on an idle pull this often, so a silent pull is a dead one. */
const PULL_HEARTBEAT_MS = 1_000;
/** A pull without a message or heartbeat for this long is abandoned (its leader or link is gone). */
const PULL_SILENCE_MS = 3 * PULL_HEARTBEAT_MS;
/** Pauses between failed pulls: short, since a new consumer leader is usable as soon as elected. */
const PULL_RETRY_BACKOFF: BackoffOptions = { baseMs: 100, capMs: 500 };

/**
 * Pulls from the relay's durable consumer and hands each message to `onMessage` without waiting
 * for it, up to `maxHeld` at once: the per-job ordering and the Svix budget decide what waits,
 * not the order of the pull. Reconnects forever.
 *
 * Losing a NATS node must cost no more than NATS's own failover (a Raft election, several
 * seconds): a pull the dead leader held, or one sent over a connection that died, gets no answer,
 * so each pull is watched for silence (messages and idle heartbeats) and abandoned after
 * PULL_SILENCE_MS — also while the client reconnects, when nats.js stops watching it and
 * re-checks the consumer with a request that hangs for its full timeout while there is no leader.
 * A failed pull is retried within half a second, on the consumer already looked up: a pull to a
 * consumer without a leader fails at once (no responders), where a consumer look-up would wait out
 * its timeout and delay the first pull after the election by up to that long.
 */
export function startConsumerLoop(o: ConsumerLoopOptions): ConsumerLoop {
  const stopping = new AbortController();
  const held = new Map<JsMsg, number>();
  let active: ConsumerMessages | undefined;
  /** When the active pull last showed the server is there (a message, a heartbeat, its start). */
  let activeSign = 0;
  /** The pull the watchdog gave up on, if it was the last one. */
  let abandoned: ConsumerMessages | undefined;
  /** When the current run of failed pulls began (0: the server answers). */
  let failingSince = 0;
  let failures = 0;
  let consuming = false;
  let waitingForRoom = false;
  /** Messages the consumer had left after the last one it delivered. */
  let pendingAfterLast = 0;
  let freed: (() => void) | undefined;
  const acks = createAckResender(o.nats.nc, { windowMs: PULL_SILENCE_MS + 2_000 });

  const setConsuming = (on: boolean) => {
    if (consuming !== on) {
      consuming = on;
      o.onConsuming?.(on);
    }
  };

  function hold(m: JsMsg): void {
    held.set(m, Date.now());
    void o
      .onMessage(withAckRemembered(m, acks))
      .catch((err: unknown) => o.log.error({ err, stream_seq: m.seq }, "relay handler failed"))
      .finally(() => {
        held.delete(m);
        freed?.();
      });
  }

  /** Waits until at least `n` more messages may be held. */
  async function room(n: number): Promise<void> {
    while (o.maxHeld - held.size < n && !stopping.signal.aborted) {
      waitingForRoom = true;
      await new Promise<void>((resolve) => {
        freed = resolve;
      });
      freed = undefined;
    }
    waitingForRoom = false;
  }

  /** The server answered the active pull (a message or a heartbeat). */
  function answered(): void {
    activeSign = Date.now();
    failures = 0;
    const resent = acks.answered();
    if (failingSince > 0 || resent > 0) {
      o.log.info(
        { after_ms: failingSince > 0 ? activeSign - failingSince : undefined, acks_resent: resent },
        "relay consumer answers again",
      );
      failingSince = 0;
    }
  }

  /** Records each heartbeat of `batch` as a sign of life, until the batch ends. */
  async function watchHeartbeats(batch: ConsumerMessages): Promise<void> {
    for await (const s of batch.status()) {
      if (active === batch && s.type === "heartbeat") answered();
    }
  }

  async function run(): Promise<void> {
    // Pull only what there is room for. consume() keeps pulling while its iterator is not read,
    // so a loop that stops reading when full lets thousands of messages pile up unread in the
    // client, where their ack_wait runs out (docs/operations.md, "Sizing": the backpressure drill).
    const batchMin = Math.max(1, Math.min(64, Math.floor(o.maxHeld / 4)));
    let consumer: Consumer | undefined;
    while (!stopping.signal.aborted) {
      try {
        await o.nats.whenConnected(stopping.signal);
        // Looked up once: pulls name the consumer, so a consumer re-created under the same name
        // (or given a new leader) is reached by the next pull without a new look-up.
        consumer ??= await o.js.consumers.get(o.stream, o.consumer);
        await room(batchMin);
        if (stopping.signal.aborted) break;
        const batch = await consumer.fetch({
          max_messages: o.maxHeld - held.size,
          expires: PULL_EXPIRES_MS,
          idle_heartbeat: PULL_HEARTBEAT_MS,
        });
        active = batch;
        activeSign = Date.now();
        void watchHeartbeats(batch).catch(() => undefined);
        setConsuming(true);
        for await (const m of batch) {
          if (active === batch) answered();
          pendingAfterLast = m.info.pending;
          // After stop(), messages of the pull still arriving go straight back.
          if (stopping.signal.aborted) m.nak();
          else hold(m);
        }
        if (abandoned === batch && !stopping.signal.aborted) {
          throw new Error(`no message or heartbeat for ${PULL_SILENCE_MS} ms on a pull`);
        }
      } catch (err) {
        setConsuming(false);
        if (stopping.signal.aborted) break;
        acks.suspect();
        // One line per outage, not one per failed pull (a leader election fails a pull every few
        // hundred milliseconds for several seconds).
        if (failingSince === 0) {
          failingSince = Date.now();
          o.log.warn({ err }, "relay consumer lost; pulling again until it answers");
        }
        failures++;
        await sleep(backoffMs(failures - 1, PULL_RETRY_BACKOFF), stopping.signal);
      } finally {
        active = undefined;
      }
    }
    setConsuming(false);
  }

  // A dropped connection may have taken the last acks with it.
  void (async () => {
    for await (const s of o.nats.nc.status()) {
      if (stopping.signal.aborted) break;
      if (s.type === "disconnect") acks.suspect();
    }
  })().catch(() => undefined);

  // A pull that has gone silent is abandoned: what it already delivered is still handed out, and
  // the loop pulls again (from the new leader, over the new connection).
  const watchdog = setInterval(() => {
    const batch = active;
    if (batch && Date.now() - activeSign > PULL_SILENCE_MS) {
      active = undefined;
      abandoned = batch;
      void batch.close().catch(() => undefined);
    }
  }, PULL_HEARTBEAT_MS / 2);
  watchdog.unref();

  // Held messages wait for their job's turn, the circuit or the budget; tell JetStream they are
  // being worked on well before ack_wait runs out.
  const keepAlive = setInterval(() => {
    const now = Date.now();
    for (const [m, since] of held) if (now - since >= o.keepAliveMs) m.working();
  }, o.keepAliveMs);
  keepAlive.unref();

  const loop = run();

  return {
    get consuming() {
      return consuming;
    },
    get held() {
      return held.size;
    },
    get behind() {
      return waitingForRoom || pendingAfterLast >= o.maxHeld;
    },
    async stop() {
      stopping.abort();
      freed?.();
      await active?.close().catch(() => undefined);
      await loop;
      while (held.size > 0) {
        await new Promise<void>((resolve) => {
          freed = resolve;
        });
      }
      clearInterval(keepAlive);
      clearInterval(watchdog);
    },
  };
}
