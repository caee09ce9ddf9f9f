import type { DeliveryWorker } from "./delivery.js";
import type { PortalSessions } from "./portal-sessions.js";
import type { RequestLog } from "./request-log.js";
import type { StandInStore } from "./store.js";

/** What every API handler may use; built once by `startSvixStandIn`. */
export interface StandInContext {
  store: StandInStore;
  delivery: DeliveryWorker;
  portal: PortalSessions;
  log: RequestLog;
  /** Scales waits Svix measures in minutes or hours (retries, portal expiry, rotation grace). */
  timeScale: number;
  /** Base URL the portal links point at. */
  publicUrl: () => string;
}
