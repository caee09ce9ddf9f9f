/**
 * An event's `revision` (docs/receiving-webhooks.md, "Order: the one rule"): its stream sequence
 * in JOBS, or — for an event stored again, a replayed dead letter — the revision it was first
 * given (header `Jobhooks-Revision`), so a receiver that has since stored a later event of the job
 * recognises the replay as old news. Never above where it is stored now: a first revision is
 * always older than a later copy, and anything else in the header is not ours.
 */
export function revisionOf(seq: number, firstRevision: string | undefined): number {
  const first = firstRevision ? Number(firstRevision) : Number.NaN;
  return Number.isSafeInteger(first) && first > 0 && first < seq ? first : seq;
}
