import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "../log/logger.js";
import type { NatsLink } from "../nats/connection.js";
import { sleep } from "../resilience/clock.js";

export interface ConsumerLoop {
  /** Whether the loop is attached to its consumer right now. */
  readonly consuming: boolean;
  /** Messages taken from JetStream whose handling has not finished. */
  readonly held: number;
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

/**
 * Pulls from the relay's durable consumer and hands each message to `onMessage` without waiting
 * for it, up to `maxHeld` at once: the per-job ordering and the Svix budget decide what waits,
 * not the order of the pull. Reconnects forever.
 */
export function startConsumerLoop(o: ConsumerLoopOptions): ConsumerLoop {
  const stopping = new AbortController();
  const held = new Map<JsMsg, number>();
  let active: ConsumerMessages | undefined;
  let consuming = false;
  let freed: (() => void) | undefined;

  const setConsuming = (on: boolean) => {
    if (consuming !== on) {
      consuming = on;
      o.onConsuming?.(on);
    }
  };

  function hold(m: JsMsg): void {
    held.set(m, Date.now());
    void o
      .onMessage(m)
      .catch((err: unknown) => o.log.error({ err, stream_seq: m.seq }, "relay handler failed"))
      .finally(() => {
        held.delete(m);
        freed?.();
      });
  }

  /** Waits until at least `n` more messages may be held. */
  async function room(n: number): Promise<void> {
    while (o.maxHeld - held.size < n && !stopping.signal.aborted) {
      await new Promise<void>((resolve) => {
        freed = resolve;
      });
      freed = undefined;
    }
  }

  async function run(): Promise<void> {
    // Pull only what there is room for. consume() keeps pulling while its iterator is not read,
    // so a loop that stops reading when full lets thousands of messages pile up unread in the
    // client (measured: 10,000 after an outage), where their ack_wait runs out.
    const batchMin = Math.max(1, Math.min(64, Math.floor(o.maxHeld / 4)));
    while (!stopping.signal.aborted) {
      try {
        await o.nats.whenConnected(stopping.signal);
        const consumer = await o.js.consumers.get(o.stream, o.consumer);
        while (!stopping.signal.aborted) {
          await room(batchMin);
          if (stopping.signal.aborted) break;
          // A short expiry makes a lost consumer leader (or a deleted consumer) visible in seconds.
          const batch = await consumer.fetch({ max_messages: o.maxHeld - held.size, expires: 2_000 });
          active = batch;
          setConsuming(true);
          for await (const m of batch) {
            // After stop(), messages of the pull still arriving go straight back.
            if (stopping.signal.aborted) m.nak();
            else hold(m);
          }
          active = undefined;
        }
      } catch (err) {
        if (!stopping.signal.aborted) o.log.warn({ err }, "relay consumer lost; reconnecting");
      } finally {
        active = undefined;
        setConsuming(false);
      }
      if (!stopping.signal.aborted) await sleep(1_000, stopping.signal);
    }
  }

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
    },
  };
}
