/** The Piscina thread pool that parses, chunks and (offline) embeds, off the main thread. */
import { Piscina } from 'piscina';
import { decodeResult, type ChunkStreamResult, type ChunkStreamTask, type ChunkTask, type ChunkTaskResult } from '../../shared/thread-messages.ts';
import { ChunkStream } from './chunk-stream.ts';
import type { LexicalEmbedRunner } from '../providers/local-provider.ts';

// The thread entry next to this module: compiled JavaScript in dist/, or the TypeScript source when run from src/.
const WORKER_FILE = new URL(`../../threads/chunk-worker${import.meta.url.endsWith('.js') ? '.js' : '.ts'}`, import.meta.url).href;

/** Young generation of each chunking thread (three semi-spaces' worth: 4 MB each, as the launcher gives `start`). */
export const THREAD_YOUNG_GENERATION_MB = 12;

export class ChunkPool implements LexicalEmbedRunner {
  private readonly pool: Piscina;

  constructor(threads: number) {
    this.pool = new Piscina({
      filename: WORKER_FILE,
      // Threads start on first use (one-shot commands that never chunk start none) and then live as long as
      // the process: each start costs a tokenizer load (tiktoken's BPE table) and Node's TypeScript stripping
      // of the thread's modules, which re-creating idle threads paid again and again.
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      // V8 grows a busy isolate's young generation up to 64 MB per semi-space; a thread's live set is a few MB
      // (the job's segments are in old space), so a small young generation keeps that growth out of peak RSS.
      resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB },
    });
  }

  get threads(): number {
    return this.pool.maxThreads;
  }

  /**
   * For metrics: time the threads' event loops were busy (ms, summed over the live threads: each thread's own
   * event-loop utilisation), and tasks waiting for a thread.
   */
  stats(): { threads: number; busyMs: number; queued: number } {
    let busyMs = 0;
    for (const thread of this.pool.threads) busyMs += thread.performance.eventLoopUtilization().active;
    return { threads: this.pool.maxThreads, busyMs, queued: this.pool.queueSize };
  }

  async chunk(task: ChunkTask, signal?: AbortSignal): Promise<ChunkTaskResult> {
    const bytes = (await this.pool.run(task, { signal })) as Uint8Array;
    return decodeResult(bytes);
  }

  /** Parse and chunk in a thread, receiving chunks in batches as they are cut (see ChunkStream). */
  stream(task: ChunkTask, options: { batchSize: number; window: number; signal?: AbortSignal }): ChunkStream {
    return new ChunkStream((port) =>
      this.pool.run({ ...task, port, batchSize: options.batchSize, window: options.window } satisfies ChunkStreamTask, {
        name: 'streamChunks',
        transferList: [port],
        signal: options.signal,
      }) as Promise<ChunkStreamResult>,
    );
  }

  embedLexical(inputs: string[], dimensions: number): Promise<string[]> {
    return this.pool.run({ inputs, dimensions }, { name: 'embedLexical' }) as Promise<string[]>;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
