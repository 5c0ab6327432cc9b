/**
 * The local driver's clock. It jumps straight to the next due event while nothing real is running
 * (weeks of invoices and carbon polls pass in seconds) and follows real time while a local
 * container is working, so a training's measured CPU time and its duration stay consistent.
 */
export class VirtualClock {
  private nowMs: number;

  constructor(start: Date) {
    this.nowMs = start.getTime();
  }

  readonly now = (): Date => new Date(this.nowMs);

  advanceTo(at: Date): void {
    if (at.getTime() > this.nowMs) this.nowMs = at.getTime();
  }

  advanceBy(ms: number): void {
    if (ms > 0) this.nowMs += ms;
  }
}
