/** Turning transcript files into queue entries (document id, title, detected format, payload). */
import fs from 'node:fs';
import path from 'node:path';
import { assertNotBinary } from '../../shared/formats/clean-text.ts';
import { detectFormat } from '../../shared/formats/detect-format.ts';
import { readSpeakerNames } from '../../shared/formats/speaker-names.ts';
import { storableText } from '../../shared/text-hygiene.ts';
import type { EnqueueRequest } from '../stores/queue-store.ts';

export interface FileArgs {
  files: string[];
  documentId?: string;
  version?: string;
  title?: string;
  format?: string;
  priority?: number;
  /** --speaker-names: a JSON object, stored as the jobs' metadata.speaker_names. */
  speakerNames?: string;
}

/**
 * One queue entry per file. Every payload built from text goes through storableText (no NUL, no lone surrogates),
 * as a web app inserting rows itself must do too (README, "Enqueue from a web app").
 */
export function fileJobs(args: FileArgs): EnqueueRequest[] {
  if (args.documentId && args.files.length > 1) {
    throw new Error('--document-id names one document: give one file, or let each file name be its document id');
  }
  const speakerNames = args.speakerNames === undefined ? undefined : speakerNamesOption(args.speakerNames);
  return args.files.map((file) => {
    let raw: string;
    try {
      raw = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const base = path.basename(file);
    // A binary file (or UTF-16) is refused here, while its NUL bytes still show what it is (BadInputError, exit 1).
    assertNotBinary(raw, base);
    // PostgreSQL's jsonb cannot hold \u0000 (nor lone surrogates): removed before the payload is built.
    const text = storableText(raw);
    return {
      documentId: args.documentId ?? base,
      version: args.version ?? '1',
      title: args.title ?? base.replace(/\.[^.]+$/, ''),
      format: args.format ?? detectFormat(text, base),
      payload: { text },
      metadata: speakerNames === undefined ? { source_file: base } : { source_file: base, speaker_names: speakerNames },
      priority: args.priority ?? 0,
    };
  });
}

/** --speaker-names, checked here as the worker would check it, so a typo fails before anything is queued. */
function speakerNamesOption(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`--speaker-names: expected a JSON object like '{"spk_0": "Ann"}', got ${JSON.stringify(text.slice(0, 40))}`);
  }
  let names: ReturnType<typeof readSpeakerNames>;
  try {
    names = readSpeakerNames(value);
  } catch (error) {
    throw new Error((error as Error).message.replace(/^metadata\.speaker_names/, '--speaker-names'));
  }
  if (names === null) throw new Error(`--speaker-names: expected a JSON object like '{"spk_0": "Ann"}', got null`);
  return value as Record<string, unknown>;
}
