/**
 * Preloaded into the worker process of scenario d (`node --import ./bench/memory-probe.ts …`): every 250 ms it
 * writes one JSON line to stderr with process.memoryUsage() of the main thread (heap, external, array buffers)
 * and the process RSS, so the bench can tell live heap from garbage and from per-thread overhead.
 */
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const mb = (n: number) => Math.round(n / 2 ** 20);
  const t0 = performance.now();
  setInterval(() => {
    const m = process.memoryUsage();
    process.stderr.write(
      `${JSON.stringify({ probe: { atMs: Math.round(performance.now() - t0), at: Date.now(), rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) } })}\n`,
    );
  }, 250).unref();
}
