/**
 * A progress bar on stderr for anything that takes more than a second. It stays silent for the
 * first second (short jobs print nothing), redraws at most 10 times a second, and on a non-TTY
 * (CI logs) prints a plain line every 10 % instead of carriage returns.
 */
export class ProgressBar {
  private current = 0;
  private readonly startedAt = Date.now();
  private lastDrawAt = 0;
  private lastPercentLogged = -10;
  private drawn = false;

  constructor(
    private readonly label: string,
    private total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly unit = '',
  ) {}

  setTotal(total: number): void {
    this.total = total;
  }

  tick(by = 1): void {
    this.update(this.current + by);
  }

  update(value: number): void {
    this.current = value;
    const now = Date.now();
    if (now - this.startedAt < 1000 || now - this.lastDrawAt < 100) return;
    this.lastDrawAt = now;
    this.draw(false);
  }

  done(message?: string): void {
    if (this.drawn) this.draw(true);
    if (message && this.drawn) this.stream.write(`${message}\n`);
  }

  private draw(final: boolean): void {
    const ratio = this.total > 0 ? Math.min(1, this.current / this.total) : 0;
    const percent = Math.floor(ratio * 100);
    const elapsedSeconds = (Date.now() - this.startedAt) / 1000;
    const etaSeconds = ratio > 0 ? (elapsedSeconds / ratio) * (1 - ratio) : NaN;
    const counts = `${this.current}/${this.total}${this.unit ? ` ${this.unit}` : ''}`;
    const eta = Number.isFinite(etaSeconds) && !final ? ` eta ${etaSeconds.toFixed(0)}s` : '';
    if (this.stream.isTTY) {
      const width = 24;
      const filled = Math.round(ratio * width);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      this.stream.write(
        `\r${this.label} [${bar}] ${percent}% ${counts} ${elapsedSeconds.toFixed(1)}s${eta}  `,
      );
      if (final) this.stream.write('\n');
      this.drawn = true;
    } else if (final || percent >= this.lastPercentLogged + 10) {
      this.lastPercentLogged = percent;
      this.stream.write(`${this.label}: ${percent}% ${counts} ${elapsedSeconds.toFixed(1)}s${eta}\n`);
      this.drawn = true;
    }
  }
}
