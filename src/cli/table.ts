/**
 * A plain-text table for a terminal: columns padded to their widest cell (cut at `maxCellWidth`),
 * the last column left whole so a long detail is never truncated.
 */
export function formatTable(head: string[], rows: string[][], maxCellWidth = 60): string {
  const widths = head.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => Math.min(maxCellWidth, (r[i] ?? "").length))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.slice(0, maxCellWidth).padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join("\n")}\n`;
}

/**
 * What a `list` command prints: one JSON object per line with `--json` (for scripts), else a table
 * on stdout, or `none` on stderr when there is nothing to list, so a script reading stdout sees no rows.
 */
export function printRecords<T>(
  records: T[],
  o: { json: boolean | undefined; none: string; table: (records: T[]) => string },
): void {
  if (o.json) {
    for (const r of records) process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  if (records.length === 0) {
    process.stderr.write(`${o.none}\n`);
    return;
  }
  process.stdout.write(o.table(records));
}
