/** `rag-worker show <document-id>`: a published document with its analysis and what ingesting it cost. */
import { secretsOf } from '../../shared/config.ts';
import type { StoredAnalysis } from '../../shared/claude/analysis.ts';
import type { Usage } from '../../shared/claude/usage.ts';
import { redact } from '../../shared/redact.ts';
import { printJson } from './context.ts';
import { withStore } from './queue-commands.ts';

export async function showCommand(argv: Record<string, unknown>): Promise<void> {
  await withStore(argv, async (store, _queue, config) => {
    const documentId = argv.documentId as string;
    const doc = await store.getDocument(documentId, argv.docVersion as string | undefined);
    if (!doc) {
      console.error(`No published document ${documentId}${argv.docVersion ? ` version ${argv.docVersion}` : ''}`);
      process.exitCode = 1;
      return;
    }
    if (argv.json) return printJson(doc);
    const secrets = secretsOf(config);
    console.log(`Document ${doc.document_id} (version ${doc.version})${doc.title ? ` — ${doc.title}` : ''}`);
    console.log(`  chunks    ${doc.chunk_count} (${doc.embedding_model ?? 'unknown model'}), ingested ${new Date(doc.ingested_at).toISOString()} by job ${doc.job_id}`);
    const cost = formatUsage(doc.usage);
    if (cost) console.log(`  cost      ${cost}`);
    for (const line of analysisLines(doc.analysis)) console.log(redact(line, secrets));
  });
}

/** One line of what a job or document spent, or '' when nothing was recorded. */
export function formatUsage(u: Usage): string {
  const parts: string[] = [];
  if (u.cost_usd !== undefined) parts.push(`$${u.cost_usd.toFixed(4)}`);
  if (u.embedding_tokens) parts.push(`embeddings ${u.embedding_tokens} tokens${u.embedding_usd !== undefined ? ` ($${u.embedding_usd.toFixed(4)})` : ''}`);
  if (u.claude_requests) {
    parts.push(
      `Claude ${u.claude_requests} requests: ${u.claude_input_tokens ?? 0} input, ${u.claude_cache_write_tokens ?? 0} cache write, ` +
        `${u.claude_cache_read_tokens ?? 0} cache read, ${u.claude_output_tokens ?? 0} output tokens${u.claude_usd !== undefined ? ` ($${u.claude_usd.toFixed(4)})` : ''}`,
    );
  }
  if (u.unpriced_models) parts.push(`no price for ${u.unpriced_models}`);
  return parts.join('; ');
}

function analysisLines(a: StoredAnalysis | null): string[] {
  if (!a) return ['  analysis  none (RAG_ENABLE_CLAUDE_ANALYSIS was off)'];
  if (a.status === 'skipped') return [`  analysis  skipped: ${a.reason}`];
  const out = [`  analysis  ${a.model}, ${a.windows} window${a.windows === 1 ? '' : 's'}`, '', 'Summary', `  ${a.summary}`];
  const list = (title: string, items: string[]) => {
    if (items.length === 0) return;
    out.push('', title, ...items.map((i) => `  • ${i}`));
  };
  list('Topics', a.topics);
  list('Decisions', a.decisions);
  list('Action items', a.action_items.map((i) => `${i.task}${i.owner ? ` — ${i.owner}` : ''}${i.due ? ` (due ${i.due})` : ''}`));
  list('Key quotes', a.key_quotes.map((q) => `“${q.quote}”${q.speaker ? ` — ${q.speaker}` : ''}${q.time ? ` [${q.time}]` : ''}`));
  list('Speakers', a.speakers.map((s) => `${s.speaker}: ${s.role}`));
  return out;
}
