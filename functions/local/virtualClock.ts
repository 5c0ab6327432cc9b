/**
 * The local driver's clock. It jumps straight to the next due event (weeks of invoices and carbon
 * polls pass in seconds) and stands still while a local container is working (LocalHost.runUntil
 * waits for it in real time), so the same scenario gives the same virtual timeline, decisions and
 * models however loaded the machine is.
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
