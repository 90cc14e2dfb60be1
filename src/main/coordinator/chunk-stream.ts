/**
 * The main-thread end of a streamed chunk task (src/threads/chunk-worker.ts streamChunks): the parse result
 * first, then chunk batches as the thread cuts them, with a credit sent back for every batch taken so the thread
 * stays at most `window` batches ahead. Closing the stream (done, or the job aborted) stops the thread's task.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { BadInputError } from '../../shared/errors.ts';
import { decodeChunks, type ChunkStreamMessage, type ChunkStreamResult } from '../../shared/thread-messages.ts';
import type { Chunk, ConcreteFormat } from '../../shared/types.ts';

export interface ChunkStreamHead {
  format: ConcreteFormat;
  segmentsTotal: number;
  signature: string;
  warnings: string[];
}

export interface ChunkStreamEnd {
  chunksTotal: number;
  elapsedMs: number;
}

export class ChunkStream {
  /** The parse result; rejects with BadInputError when the transcript cannot be parsed. */
  readonly head: Promise<ChunkStreamHead>;
  /** Known once every batch has been taken. */
  end: ChunkStreamEnd | undefined;
  private readonly port: MessagePort;
  private readonly queue: Uint8Array[] = [];
  private finished = false;
  private failure: unknown;
  private wake: () => void = () => {};
  private closedByUs = false;
  private resolveHead!: (head: ChunkStreamHead) => void;
  private rejectHead!: (error: unknown) => void;

  /** start runs the thread task with the other end of the channel; its result settles errors. */
  constructor(start: (port: MessagePort) => Promise<ChunkStreamResult>) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.head = new Promise((resolve, reject) => {
      this.resolveHead = resolve;
      this.rejectHead = reject;
    });
    this.head.catch(() => {}); // observed by the caller; never an unhandled rejection
    port1.on('message', (message: ChunkStreamMessage) => this.onMessage(message));
    // The task's result travels on Piscina's own channel, so it may overtake the last messages on this one:
    // a successful result is final only once this channel has closed (messages before a close are delivered).
    port1.on('close', () => {
      if (!this.end && !this.closedByUs) this.fail(new Error('chunk stream: the thread closed the stream without sending its end'));
    });
    start(port2).then(
      (result) => {
        if (!result.ok) this.fail(new BadInputError(result.message));
      },
      (error) => this.fail(error),
    );
  }

  private onMessage(message: ChunkStreamMessage): void {
    if (message.type === 'head') {
      const { type: _type, ...head } = message;
      this.resolveHead(head);
    } else if (message.type === 'chunks') {
      this.queue.push(message.bytes);
    } else {
      this.end = { chunksTotal: message.chunksTotal, elapsedMs: message.elapsedMs };
      this.finished = true;
    }
    this.wake();
  }

  private fail(error: unknown): void {
    if (this.finished && this.end) return;
    this.failure ??= error;
    this.finished = true;
    this.rejectHead(error);
    this.wake();
  }

  /** Chunk batches in order; throws what the thread failed with. Taking a batch grants the thread one more. */
  async *batches(): AsyncGenerator<Chunk[], void, undefined> {
    try {
      for (;;) {
        const bytes = this.queue.shift();
        if (bytes) {
          this.port.postMessage({ type: 'credit' });
          yield decodeChunks(bytes);
          continue;
        }
        if (this.failure !== undefined) throw this.failure;
        if (this.finished) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.close();
    }
  }

  /** Stops the thread's task (at its next batch) and frees the channel. */
  close(): void {
    this.closedByUs = true;
    this.port.close();
  }
}
