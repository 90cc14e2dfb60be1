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
      // Idle threads exit after a second: a big transcript's parse leaves a large heap in its thread,
      // and memory should not stay at that high-water mark for the rest of the run.
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 1_000,
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
