/** Bounds Svix requests in flight across every partition loop (JOBHOOKS_RELAY_CONCURRENCY). */
export class Semaphore {
  private queue: Array<() => void> = [];
  private free: number;

  constructor(permits: number) {
    this.free = permits;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.queue.push(resolve));
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.free++;
  }
}
