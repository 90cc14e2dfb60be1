/**
 * Preloaded into the worker process of scenario d (`node --import ./bench/memory-probe.ts …`; worker threads
 * inherit the flag): every 250 ms each thread writes one JSON line to stderr with its process.memoryUsage()
 * (heap, external and array buffers of that thread's isolate; RSS of the process) and its thread id (0: main),
 * so the bench can tell live heap from garbage, and the main thread's share from each chunking thread's.
 */
import v8 from 'node:v8';
import { threadId } from 'node:worker_threads';

{
  const mb = (n: number) => Math.round(n / 2 ** 20);
  const t0 = performance.now();
  setInterval(() => {
    const m = process.memoryUsage();
    process.stderr.write(
      `${JSON.stringify({ probe: { pid: process.pid, thread: threadId, atMs: Math.round(performance.now() - t0), at: Date.now(), rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers), spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, [mb(x.space_used_size), mb(x.space_size)]])) } })}\n`,
    );
  }, 250).unref();
}
