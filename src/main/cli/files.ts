/** Turning transcript files into queue entries (document id, title, detected format, payload). */
import fs from 'node:fs';
import path from 'node:path';
import { detectFormat } from '../../shared/formats/detect-format.ts';
import type { EnqueueRequest } from '../stores/queue-store.ts';

export interface FileArgs {
  files: string[];
  documentId?: string;
  version?: string;
  title?: string;
  format?: string;
  priority?: number;
}

export function fileJobs(args: FileArgs): EnqueueRequest[] {
  if (args.documentId && args.files.length > 1) {
    throw new Error('--document-id names one document: give one file, or let each file name be its document id');
  }
  return args.files.map((file) => {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const base = path.basename(file);
    return {
      documentId: args.documentId ?? base,
      version: args.version ?? '1',
      title: args.title ?? base.replace(/\.[^.]+$/, ''),
      format: args.format ?? detectFormat(text, base),
      payload: { text },
      metadata: { source_file: base },
      priority: args.priority ?? 0,
    };
  });
}
