/**
 * The Piscina thread entry (src/threads/chunk-worker.ts) reports unusable transcripts as parse failures
 * ({ok: false, category: 'bad_input'}), which the job runner turns into BadInputError (fail at once, no retry):
 * out-of-range times, zero-width-only text. Checked on the function and through a real thread pool (whole and
 * streamed), with the payload as the JSON text a claimed job carries.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ChunkPool } from '../../src/main/coordinator/chunk-pool.ts';
import { BadInputError } from '../../src/shared/errors.ts';
import { chunkTranscript } from '../../src/threads/chunk-worker.ts';
import type { ChunkTask } from '../../src/shared/thread-messages.ts';

const options = { maxTokens: 64, charLimit: 400, encoding: 'cl100k_base' };

const cases: Array<{ name: string; format: string; payload: unknown; message: RegExp; speakerNames?: unknown }> = [
  {
    name: 'segments start_ms 1e20',
    format: 'segments',
    payload: { segments: [{ seq: 1, text: 'fine', start_ms: 0, end_ms: 5 }, { seq: 2, text: 'too late', start_ms: 1e20 }] },
    message: /^segments\[1\]\.start_ms: 100000000000000000000 is out of range/,
  },
  {
    name: 'whisper end 1e16 seconds',
    format: 'auto',
    payload: { text: '{"segments":[{"start":0,"end":1e16,"text":"hi"}]}' },
    message: /^whisper: segments\[0\]\.end: 10000000000000000 is out of range/,
  },
  {
    name: 'vtt with absurd hours',
    format: 'vtt',
    payload: { text: 'WEBVTT\n\n9999999999:00:00.000 --> 9999999999:00:01.000\nhi\n' },
    message: /^vtt: cue 1 \(line 3\): timestamp "9999999999:00:00\.000" is out of range/,
  },
  {
    name: 'text of only zero-width characters',
    format: 'auto',
    payload: { text: '\u200B\u200C\u200D\u2060\uFEFF\n'.repeat(2000) },
    message: /^transcript is empty \(payload\.text is blank\)$/,
  },
  {
    name: 'metadata.speaker_names that is not a map of names',
    format: 'auto',
    payload: { text: 'WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nAnn: hi\n' },
    speakerNames: { Ann: ['Ann', 'Lee'] },
    message: /^metadata\.speaker_names\["Ann"\]: expected a non-empty name, got an array$/,
  },
  {
    name: 'segments of only zero-width characters',
    format: 'auto',
    payload: { segments: [{ seq: 1, text: '\u200B' }, { seq: 2, text: '\u2060 \u00AD' }] },
    message: /^transcript is empty \(no spoken text after parsing segments\)$/,
  },
];

describe('chunkTranscript: unusable transcripts are parse failures', () => {
  for (const c of cases) {
    test(c.name, () => {
      for (const payload of [c.payload, JSON.stringify(c.payload)]) {
        const result = chunkTranscript({ format: c.format, payload, options, speakerNames: c.speakerNames });
        assert.equal(result.ok, false, JSON.stringify(result).slice(0, 200));
        if (result.ok) return;
        assert.equal(result.category, 'bad_input');
        assert.match(result.message, c.message);
      }
    });
  }
});

describe('through the real thread pool', () => {
  const pool = new ChunkPool(1);
  after(() => pool.close());
  test('every case comes back ok:false, bad_input', async () => {
    for (const c of cases) {
      const task: ChunkTask = { format: c.format, payload: JSON.stringify(c.payload), options, speakerNames: c.speakerNames };
      const result = await pool.chunk(task);
      assert.equal(result.ok, false, c.name);
      if (!result.ok) assert.match(result.message, c.message, c.name);
    }
  });

  test('streamed (as the job runner chunks): the stream head rejects with BadInputError', async () => {
    for (const c of cases) {
      const stream = pool.stream({ format: c.format, payload: JSON.stringify(c.payload), options, speakerNames: c.speakerNames }, { batchSize: 8, window: 2 });
      try {
        await assert.rejects(stream.head, (error: unknown) => error instanceof BadInputError && c.message.test(error.message), c.name);
      } finally {
        stream.close();
      }
    }
  });
});
