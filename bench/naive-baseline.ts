/**
 * The naive baseline, as the earlier worker did it: one job at a time; for each segment, one embeddings
 * request through the openai SDK (its default retries, which honour retry-after) and one INSERT per chunk
 * (one segment = one chunk) into rag_chunks. No batching, no concurrency, no pacing.
 */
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import pg from 'pg';
import type { SyntheticTranscript } from './synthetic-transcripts.ts';

export interface NaiveOptions {
  databaseUrl: string;
  baseURL: string;
  model: string;
  dimensions: number;
  transcripts: readonly SyntheticTranscript[];
}

export interface NaiveResult {
  wallMs: number;
  transcripts: number;
  segments: number;
  requests: number;
  tokens: number;
}

export async function runNaiveBaseline(o: NaiveOptions): Promise<NaiveResult> {
  const client = new OpenAI({ baseURL: o.baseURL, apiKey: 'bench' });
  const db = new pg.Client({ connectionString: o.databaseUrl });
  await db.connect();
  let requests = 0;
  let tokens = 0;
  let segments = 0;
  const started = performance.now();
  try {
    for (const t of o.transcripts) {
      let index = 0;
      for (const s of t.segments) {
        const content = `${s.speaker}: ${s.text}`;
        const res = await client.embeddings.create({ model: o.model, input: content, dimensions: o.dimensions });
        requests++;
        tokens += res.usage.prompt_tokens;
        const vector = `[${res.data[0].embedding.join(',')}]`;
        await db.query(
          `insert into rag_chunks (document_id, version, chunk_index, content, token_count, segment_seq_start, segment_seq_end,
                                   start_ms, end_ms, speakers, embedding, embedding_model, content_hash)
           values ($1, '1', $2, $3, $4, $5, $5, $6, $7, $8, $9::vector, $10, $11)`,
          [t.documentId, index++, content, res.usage.prompt_tokens, s.seq, s.start_ms, s.end_ms, [s.speaker], vector, o.model,
            createHash('sha256').update(content).digest('hex')],
        );
        segments++;
      }
    }
  } finally {
    await db.end();
  }
  return { wallMs: performance.now() - started, transcripts: o.transcripts.length, segments, requests, tokens };
}
