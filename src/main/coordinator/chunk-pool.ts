/** The Piscina thread pool that parses, chunks and (offline) embeds, off the main thread. */
import { Piscina } from 'piscina';
import { decodeResult, type ChunkTask, type ChunkTaskResult } from '../../shared/thread-messages.ts';
import type { LexicalEmbedRunner } from '../providers/local-provider.ts';

const WORKER_FILE = new URL('../../threads/chunk-worker.ts', import.meta.url).href;

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
    });
  }

  get threads(): number {
    return this.pool.maxThreads;
  }

  async chunk(task: ChunkTask, signal?: AbortSignal): Promise<ChunkTaskResult> {
    const bytes = (await this.pool.run(task, { signal })) as Uint8Array;
    return decodeResult(bytes);
  }

  embedLexical(inputs: string[], dimensions: number): Promise<string[]> {
    return this.pool.run({ inputs, dimensions }, { name: 'embedLexical' }) as Promise<string[]>;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
