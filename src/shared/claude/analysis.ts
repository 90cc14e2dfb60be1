/**
 * The analysis of a transcript: its shape (one zod schema, which is also the JSON schema Claude's structured
 * output is held to), validation of what comes back, and what is stored in rag_documents.analysis. Pure.
 */
import { z } from 'zod';

const actionItem = z.object({
  task: z.string().describe('What is to be done'),
  owner: z.string().nullable().describe('Who said they would do it, as named in the transcript; null when nobody was named'),
  due: z.string().nullable().describe('When it is due, as said in the transcript; null when not said'),
});
const keyQuote = z.object({
  quote: z.string().describe('Words as spoken (may be shortened with …)'),
  speaker: z.string().nullable().describe('Speaker label as in the transcript'),
  time: z.string().nullable().describe('The [hh:mm:ss] mark of the passage, without brackets; null when the transcript has no times'),
});
const speakerRole = z.object({
  speaker: z.string().describe('Speaker label as in the transcript'),
  role: z.string().describe('Apparent role in this conversation (e.g. facilitator, customer, engineer)'),
});

export const analysisSchema = z.object({
  summary: z.string().describe('A summary of the conversation in 3 to 6 sentences'),
  topics: z.array(z.string()).describe('The main topics, most important first'),
  decisions: z.array(z.string()).describe('Decisions that were made'),
  action_items: z.array(actionItem),
  key_quotes: z.array(keyQuote).describe('Up to 5 quotes that carry the most meaning'),
  speakers: z.array(speakerRole),
});

export type AnalysisBody = z.infer<typeof analysisSchema>;

/** The JSON schema sent as output_config.format (structured output). */
export const ANALYSIS_JSON_SCHEMA: Record<string, unknown> = (() => {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(analysisSchema, { target: 'draft-7', io: 'output' }) as Record<string, unknown>;
  return schema;
})();

/** rag_documents.analysis: the body with how it was made, or why there is none. */
export type StoredAnalysis =
  | ({ status: 'complete'; model: string; windows: number; created_at: string } & AnalysisBody)
  | { status: 'skipped'; model: string; reason: string; created_at: string };

/** Parses and validates Claude's answer; the error says what is wrong (for the log and a retry). */
export function parseAnalysis(text: string): { ok: true; value: AnalysisBody } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(stripFence(text));
  } catch (error) {
    return { ok: false, error: `not JSON (${(error as Error).message}); starts ${JSON.stringify(text.slice(0, 60))}` };
  }
  const parsed = analysisSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `does not match the analysis schema: ${issue.path.join('.') || '(top level)'}: ${issue.message}` };
  }
  return { ok: true, value: parsed.data };
}

/** A model that ignores structured output may wrap its JSON in a Markdown fence. */
function stripFence(text: string): string {
  const m = /^\s*```(?:json)?\s*\n([\s\S]*?)\n\s*```\s*$/.exec(text);
  return m ? m[1] : text.trim();
}
