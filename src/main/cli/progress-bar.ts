/** A one-line progress bar for `ingest` on a TTY. */
import type { JobProgress } from '../coordinator/job-runner.ts';

export class ProgressBar {
  private readonly out: NodeJS.WriteStream;
  private drawn = false;
  private lastDraw = 0;

  constructor(out: NodeJS.WriteStream) {
    this.out = out;
  }

  render(jobsDone: number, jobsTotal: number, progress: JobProgress[]): void {
    const now = Date.now();
    if (now - this.lastDraw < 100 && jobsDone < jobsTotal) return;
    this.lastDraw = now;
    const chunksDone = progress.reduce((n, p) => n + p.chunksDone, 0);
    const chunksTotal = progress.reduce((n, p) => n + p.chunksTotal, 0);
    const fraction = chunksTotal > 0 ? chunksDone / chunksTotal : 0;
    const width = 30;
    const filled = Math.round(fraction * width);
    const line = `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${Math.round(fraction * 100)}%  jobs ${jobsDone}/${jobsTotal}  chunks ${chunksDone}/${chunksTotal}`;
    this.out.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  finish(): void {
    if (this.drawn) this.out.write('\n');
  }
}
