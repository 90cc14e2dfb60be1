/** Shared data shapes. Pure: no I/O, importable from the main thread and from worker threads. */

export const TRANSCRIPT_FORMATS = [
  'auto',
  'segments',
  'vtt',
  'srt',
  'whisper',
  'text',
  'words',
  'deepgram',
  'assemblyai',
  'aws-transcribe',
  'revai',
  'google-speech',
  'azure-speech',
] as const;
export type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];
export type ConcreteFormat = Exclude<TranscriptFormat, 'auto'>;

export const JOB_STATUSES = ['queued', 'processing', 'complete', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** One utterance of a transcript after parsing: consecutive cues of one speaker are joined. */
export interface Segment {
  /** Position in the transcript, 1-based, strictly increasing after parsing. */
  seq: number;
  text: string;
  speaker: string | null;
  startMs: number | null;
  endMs: number | null;
}

export interface ParsedTranscript {
  /** The format actually parsed (never 'auto'). */
  format: ConcreteFormat;
  segments: Segment[];
  /** Non-fatal remarks (e.g. "2 duplicate seq values kept in file order"), for logs. */
  warnings: string[];
}

/** One unit that is embedded and stored as a row of rag_chunks. */
export interface Chunk {
  /** 0-based, dense, deterministic for a given transcript and chunking options. */
  index: number;
  content: string;
  tokenCount: number;
  segmentSeqStart: number;
  segmentSeqEnd: number;
  startMs: number | null;
  endMs: number | null;
  speakers: string[];
  /** sha256 hex of the content: lets a new version reuse stored embeddings. */
  contentHash: string;
}

export interface ChunkingOptions {
  /** Hard upper bound on tokens per chunk, counted with the embedding model's tokenizer. */
  maxTokens: number;
  /** Hard upper bound on characters (UTF-16 code units, i.e. JS string length) per chunk. */
  charLimit: number;
  /** tiktoken encoding name, e.g. cl100k_base. */
  encoding: string;
}
