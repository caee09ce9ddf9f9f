/** Tokens of a subject as the JOBS stream stores it. */
export interface StoredSubject {
  tenantId: string;
  jobId: string;
  status: string;
  /** Stored by the partitioned layout (`<prefix>.<partition>.<tenant>.<job>.<status>`), before
   * the stream's subject transform was removed; such messages are relayed like the others. */
  legacy: boolean;
}

/**
 * `<prefix>.<tenant>.<job>.<status>` (the published subject, stored as is), or the partitioned
 * layout's `<prefix>.<partition>.<tenant>.<job>.<status>`; undefined for anything else.
 */
export function parseStoredSubject(prefix: string, subject: string): StoredSubject | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const parts = subject.slice(prefix.length + 1).split(".");
  if (parts.length === 3) {
    const [tenantId, jobId, status] = parts as [string, string, string];
    return { tenantId, jobId, status, legacy: false };
  }
  if (parts.length === 4 && /^\d+$/.test(parts[0] as string)) {
    const [, tenantId, jobId, status] = parts as [string, string, string, string];
    return { tenantId, jobId, status, legacy: true };
  }
  return undefined;
}

/** The subjects (filters) under which the stream may hold a job's events, newest layout first. */
export function jobFilters(prefix: string, tenantId: string, jobId: string, legacy: boolean): string[] {
  const current = `${prefix}.${tenantId}.${jobId}.*`;
  return legacy ? [current, `${prefix}.*.${tenantId}.${jobId}.*`] : [current];
}

/** Matches any message stored by the partitioned layout. */
export function legacyFilter(prefix: string): string {
  return `${prefix}.*.*.*.*`;
}
