/**
 * Vectors of different embedding models are not comparable: a query embedded with one model ranks chunks
 * embedded with another at random. Pure: what a search should do given the models the stored documents used.
 */
export interface StoredModel {
  model: string;
  documents: number;
}

export type ModelCheck = { ok: true } | { ok: true; warning: string } | { ok: false; error: string };

export function checkSearchModel(stored: readonly StoredModel[], queryModel: string): ModelCheck {
  const total = stored.reduce((n, s) => n + s.documents, 0);
  if (total === 0) return { ok: true };
  const same = stored.find((s) => s.model === queryModel)?.documents ?? 0;
  const others = stored.filter((s) => s.model !== queryModel);
  const list = others.map((s) => `${s.model} (${s.documents} document${s.documents === 1 ? '' : 's'})`).join(', ');
  if (same === 0) {
    return {
      ok: false,
      error:
        `the stored chunks were embedded with ${list}, but this search would embed the query with ${queryModel}, ` +
        'whose vectors are not comparable: search with the settings they were ingested with ' +
        '(RAG_EMBEDDING_MODEL; OPENAI_API_KEY or its absence for the offline embedder), or re-ingest them with these settings',
    };
  }
  if (others.length === 0) return { ok: true };
  return { ok: true, warning: `${total - same} of ${total} stored documents were embedded with another model (${list}): they rank at random against this query; re-ingest them with ${queryModel}` };
}
