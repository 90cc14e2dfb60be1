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
    // By segments: chunks stream out of the chunking thread, so their total is known only at the end of a job.
    const chunksDone = progress.reduce((n, p) => n + p.chunksDone, 0);
    const segmentsDone = progress.reduce((n, p) => n + p.segmentsDone, 0);
    const segmentsTotal = progress.reduce((n, p) => n + p.segmentsTotal, 0);
    const fraction = segmentsTotal > 0 ? Math.min(1, segmentsDone / segmentsTotal) : 0;
    const width = 30;
    const filled = Math.round(fraction * width);
    const line = `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${Math.round(fraction * 100)}%  jobs ${jobsDone}/${jobsTotal}  segments ${segmentsDone}/${segmentsTotal}  chunks ${chunksDone}`;
    this.out.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  finish(): void {
    if (this.drawn) this.out.write('\n');
  }
}
