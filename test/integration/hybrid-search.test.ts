/**
 * Hybrid search (rag_hybrid_chunks, QueueStore.hybridChunks): the vector ranking of rag_match_chunks fused with a
 * full-text ranking of context + content by reciprocal-rank fusion. Runs against PostgreSQL and in-memory PGlite.
 *
 * Chunks are written through the real queue functions (enqueue, claim, start, rag_save_chunks with a context,
 * complete). Embeddings are unit vectors in the x-y plane at an angle from the query [1, 0, 0]: the smaller the
 * angle, the better the vector rank. Every test uses documents of its own and searches within them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type HybridRow, type MatchRow, toVectorLiteral } from '../../src/main/stores/queue-store.ts';
import { type Backend, BACKENDS, MODEL, docId, enqueueAndClaim, openBackend } from '../support/queue-fixtures.ts';

const QUERY = toVectorLiteral([1, 0, 0]);
/** A direction `angle` radians away from the query. */
const at = (angle: number) => toVectorLiteral([Math.cos(angle), Math.sin(angle), 0]);
const FAR = Math.PI - 0.1;

interface TestChunk {
  content: string;
  context?: string;
  angle: number;
}

const rrf = (k: number, ...ranks: (number | null)[]) => ranks.reduce<number>((sum, r) => (r === null ? sum : sum + 1 / (k + r)), 0);

for (const kind of BACKENDS) {
  describe(`hybrid search: rag_hybrid_chunks (${kind})`, () => {
    let b: Backend;
    before(async () => {
      b = await openBackend(kind);
    });
    after(async () => {
      await b?.close();
    });

    /** Enqueues, claims and starts a job, and saves `chunks` (with their contexts) through rag_save_chunks. */
    const saveJob = async (documentId: string, version: string, chunks: TestChunk[]) => {
      const { lease } = await enqueueAndClaim(b.store, 'hybrid-worker', { documentId, version, title: `${documentId} title` });
      await b.store.startJob(lease, chunks.length, chunks.length, 'sig-hybrid');
      const rows = chunks.map((c, index) => ({
        chunk_index: index,
        content: c.content,
        token_count: 5,
        segment_seq_start: index + 1,
        segment_seq_end: index + 1,
        start_ms: index * 1000,
        end_ms: index * 1000 + 999,
        speakers: ['Ana'],
        content_hash: `${documentId}-${version}-${index}`,
        context: c.context ?? null,
        context_key: c.context ? `ctx-${index}` : null,
      }));
      await b.sql.query('select rag_save_chunks($1, $2, $3, $4, $5::jsonb, $6::text[], $7, $8, 0)', [
        lease.jobId, lease.workerId, lease.leaseToken, MODEL, JSON.stringify(rows), chunks.map((c) => at(c.angle)), chunks.length, 5 * chunks.length,
      ]);
      return lease;
    };
    /** A published document version holding `chunks`, chunk_index in order. */
    const publish = async (documentId: string, version: string, chunks: TestChunk[]) => {
      await b.store.completeJob(await saveJob(documentId, version, chunks));
    };
    const hybrid = (query: string, count: number, documentId?: string, version?: string) => b.store.hybridChunks(query, QUERY, count, documentId, version);
    /** rag_hybrid_chunks with every parameter, straight from SQL. */
    const hybridSql = (query: string, count: number, documentId: string | null, rrfK: number | null, candidates: number | null) =>
      b.sql.query<{ chunk_index: number; score: number; vector_rank: number | null; text_rank: number | null }>(
        'select chunk_index, score, vector_rank, text_rank from rag_hybrid_chunks($1, $2::vector, $3, $4, null, $5, $6)',
        [query, QUERY, count, documentId, rrfK, candidates],
      );
    const indexes = (rows: { chunk_index: number }[]) => rows.map((r) => r.chunk_index);
    /** Asserts every row's score is the RRF of its ranks (k = 60 unless given). */
    const assertRrf = (rows: { score: number | string; vector_rank: number | null; text_rank: number | null }[], k = 60) => {
      for (const r of rows) {
        assert.ok(Math.abs(Number(r.score) - rrf(k, r.vector_rank, r.text_rank)) < 1e-12, `score ${r.score} for ranks ${r.vector_rank}/${r.text_rank}`);
      }
    };

    /** Seven generic chunks near the query (chunk i at angle 0.1 i), and one about a rare word, pointing away from it. */
    const keywordDoc = docId('hybrid-keyword');
    const keywordChunks: TestChunk[] = [
      ...Array.from({ length: 7 }, (_, i) => ({ content: `planning notes for the team, item ${i}`, angle: 0.1 * i })),
      { content: 'the Zanzibar invoice still needs a reconciliation', angle: FAR },
    ];
    before(async () => {
      await publish(keywordDoc, '1', keywordChunks);
    });

    it('a chunk found only by keyword (its vector far from the query) ranks into the results', async () => {
      assert.deepEqual(indexes(await b.store.matchChunks(QUERY, 3, keywordDoc)), [0, 1, 2], 'vector search alone misses it');
      const rows = await hybrid('zanzibar', 3, keywordDoc);
      assert.deepEqual(indexes(rows), [7, 0, 1]);
      assert.deepEqual([rows[0].vector_rank, rows[0].text_rank], [8, 1], 'text #1, and last of the eight by vector');
      assert.deepEqual(rows.slice(1).map((r) => [r.vector_rank, r.text_rank]), [[1, null], [2, null]]);
      assertRrf(rows);
      assert.equal(rows[0].content, 'the Zanzibar invoice still needs a reconciliation');
      assert.equal(rows[0].title, `${keywordDoc} title`);

      // Not among the vector candidates at all: 1 / 61 from the text list ties with the best vector-only chunk,
      // and the nearer vector goes first.
      const few = await hybridSql('zanzibar', 3, keywordDoc, null, 3);
      assert.deepEqual(few.map((r) => [r.chunk_index, r.vector_rank, r.text_rank]), [[0, 1, null], [7, null, 1], [1, 2, null]]);
      assertRrf(few);
    });

    it('a chunk in both lists outranks the chunks in one', async () => {
      const documentId = docId('hybrid-both');
      const chunks: TestChunk[] = [
        { content: 'nothing to see here', angle: 0 }, // vector #1 only
        { content: 'the budget forecast was approved', angle: 0.05 }, // vector #2, text #2
        ...Array.from({ length: 10 }, (_, i) => ({ content: `filler remark number ${i}`, angle: 0.2 + 0.05 * i })),
        { content: 'budget forecast: the budget forecast, and the budget forecast again', angle: FAR }, // text #1, vector last
      ];
      await publish(documentId, '1', chunks);
      const rows = await hybrid('budget forecast', 20, documentId);
      assert.equal(rows.length, chunks.length);
      assert.deepEqual(indexes(rows.slice(0, 3)), [1, 12, 0]);
      assert.deepEqual([rows[0].vector_rank, rows[0].text_rank], [2, 2]);
      assert.deepEqual([rows[1].vector_rank, rows[1].text_rank], [13, 1]);
      const both = rows.filter((r) => r.vector_rank !== null && r.text_rank !== null);
      const one = rows.filter((r) => r.vector_rank === null || r.text_rank === null);
      assert.ok(both.length === 2 && one.length === chunks.length - 2);
      assert.ok(Math.min(...both.map((r) => r.score)) > Math.max(...one.map((r) => r.score)), 'in both lists beats in one');
      assertRrf(rows);
      for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].score >= rows[i].score, 'ordered by score');
    });

    it('the context is searchable: a word only in the context matches, and the context comes back', async () => {
      const documentId = docId('hybrid-context');
      await publish(documentId, '1', [
        { content: 'we moved it over last week without downtime', context: 'Discussion of the Kubernetes migration of the billing service', angle: 0.6 },
        { content: 'lunch plans for Friday', angle: 0.1 },
        { content: 'the cluster upgrade is next', angle: 0.2 },
      ]);
      const rows = await hybrid('kubernetes migrations', 3, documentId);
      assert.deepEqual(indexes(rows), [0, 1, 2]);
      assert.deepEqual([rows[0].vector_rank, rows[0].text_rank], [3, 1], 'matched by its context (stemmed: migrations → migration)');
      assert.equal(rows[0].context, 'Discussion of the Kubernetes migration of the billing service');
      assert.equal(rows[0].content, 'we moved it over last week without downtime', 'content stays as spoken');
      assert.deepEqual(rows.slice(1).map((r) => [r.context, r.text_rank]), [[null, null], [null, null]]);
      assert.deepEqual(indexes(await hybrid('"billing service" -payroll', 3, documentId)).slice(0, 1), [0], 'web search syntax');
      assert.equal((await hybrid('billing -kubernetes', 3, documentId)).find((r) => r.text_rank !== null), undefined, 'an excluded word');
    });

    it('filters by document and version, like rag_match_chunks', async () => {
      const d = docId('hybrid-filter');
      const e = docId('hybrid-filter');
      await publish(d, '1', [{ content: 'quarterly revenue, version one', angle: 0.3 }, { content: 'other talk', angle: 0.1 }]);
      await publish(d, '2', [{ content: 'quarterly revenue, version two', angle: 0.4 }]);
      await publish(e, '1', [{ content: 'quarterly revenue elsewhere', angle: 0.5 }]);
      const key = (r: HybridRow) => `${r.document_id === d ? 'd' : r.document_id === e ? 'e' : 'other'}/${r.version}/${r.chunk_index}`;

      assert.deepEqual((await hybrid('quarterly revenue', 10, d)).map(key).sort(), ['d/1/0', 'd/1/1', 'd/2/0']);
      const v2 = await hybrid('quarterly revenue', 10, d, '2');
      assert.deepEqual(v2.map(key), ['d/2/0']);
      assert.deepEqual([v2[0].vector_rank, v2[0].text_rank], [1, 1], 'ranks within the filter');
      assert.deepEqual(await hybrid('quarterly revenue', 10, docId('hybrid-none')), []);
      assert.deepEqual(await hybrid('quarterly revenue', 10, d, '3'), []);
      const everywhere = (await hybrid('quarterly revenue', 100)).filter((r) => r.text_rank !== null).map(key).sort();
      assert.deepEqual(everywhere, ['d/1/0', 'd/2/0', 'e/1/0'], 'no filter: every document');
    });

    it('unpublished chunks never appear: a first ingestion in flight, a staged re-ingestion, a cancelled job', async () => {
      const inFlight = docId('hybrid-unpublished');
      await saveJob(inFlight, '1', [{ content: 'phantasmagoria in flight', context: 'phantasmagoria context', angle: 0 }]);
      const reingested = docId('hybrid-unpublished');
      await publish(reingested, '1', [{ content: 'the published words', angle: 0.2 }]);
      await saveJob(reingested, '1', [{ content: 'phantasmagoria staged', angle: 0 }]);
      const cancelled = docId('hybrid-unpublished');
      const lease = await saveJob(cancelled, '1', [{ content: 'phantasmagoria cancelled', angle: 0 }]);
      await b.store.cancelJob(lease.jobId);

      const direct = await b.sql.query<{ n: number }>(`select count(*)::int as n from rag_chunks where document_id = $1 and search_tsv @@ websearch_to_tsquery('english', 'phantasmagoria')`, [inFlight]);
      assert.equal(Number(direct[0].n), 1, 'the in-flight chunk is in rag_chunks (direct mode), only unpublished');
      const all = await hybrid('phantasmagoria', 1000);
      assert.deepEqual(all.filter((r) => r.text_rank !== null), [], 'no published chunk has the word');
      assert.ok(!all.some((r) => [inFlight, cancelled].includes(r.document_id)), 'nor do they come back by vector');
      assert.deepEqual(await hybrid('phantasmagoria', 5, inFlight), []);
      assert.deepEqual((await hybrid('phantasmagoria', 5, reingested)).map((r) => r.content), ['the published words'], 'the published version until the swap');
    });

    it('a query without lexemes (empty, only stop words) gives the vector results', async () => {
      const vector = await b.store.matchChunks(QUERY, 5, keywordDoc);
      for (const query of ['', '   ', 'the and of', 'it is what it is', '"" -']) {
        const rows = await hybrid(query, 5, keywordDoc);
        assert.deepEqual(indexes(rows), indexes(vector), `query ${JSON.stringify(query)}`);
        assert.deepEqual(rows.map((r) => [r.vector_rank, r.text_rank]), [1, 2, 3, 4, 5].map((r) => [r, null]));
        assertRrf(rows);
      }
      const nullQuery = await b.sql.query<{ chunk_index: number }>('select chunk_index from rag_hybrid_chunks(null, $1::vector, 5, $2)', [QUERY, keywordDoc]);
      assert.deepEqual(indexes(nullQuery), indexes(vector), 'a null query text too');
    });

    it('scores are the reciprocal-rank fusion of the two ranks; k and the candidate count are parameters', async () => {
      const documentId = docId('hybrid-rrf');
      const words = ['alpha', 'beta', 'gamma'];
      // Twelve chunks: the word mix varies the text ranks independently of the angles.
      const chunks = Array.from({ length: 12 }, (_, i) => ({
        content: `${words.slice(0, (i * 7) % 4).join(' ')} alpha note ${i} ${i % 3 === 0 ? 'gamma gamma' : ''}`,
        angle: ((i * 5) % 12) * 0.2,
      }));
      await publish(documentId, '1', chunks);
      const rows = await hybrid('alpha gamma', 12, documentId);
      assertRrf(rows);

      // Each rank, independently: the vector rank is the position in rag_match_chunks' order, the text rank
      // the position by ts_rank_cd among the chunks holding every query word.
      const byVector = indexes(await b.store.matchChunks(QUERY, 12, documentId));
      const byText = indexes(await b.sql.query<{ chunk_index: number }>(
        `select c.chunk_index from rag_chunks c, websearch_to_tsquery('english', 'alpha gamma') q
          where c.document_id = $1 and c.search_tsv @@ q order by ts_rank_cd(c.search_tsv, q) desc, c.id`, [documentId]));
      assert.ok(byText.length >= 2 && byText.length < 12, `some chunks match the text: ${byText}`);
      for (const r of rows) {
        assert.equal(r.vector_rank, byVector.indexOf(r.chunk_index) + 1, `vector rank of #${r.chunk_index}`);
        assert.equal(r.text_rank, byText.includes(r.chunk_index) ? byText.indexOf(r.chunk_index) + 1 : null, `text rank of #${r.chunk_index}`);
      }
      const expected = [...rows].sort((x, y) => y.score - x.score || byVector.indexOf(x.chunk_index) - byVector.indexOf(y.chunk_index));
      assert.deepEqual(indexes(rows), indexes(expected), 'by score, then vector distance');

      const k5 = await hybridSql('alpha gamma', 12, documentId, 5, null);
      assertRrf(k5, 5);
      assert.ok(k5.some((r) => r.text_rank === null), 'k5: a vector-only chunk too');
      assertRrf(await hybridSql('alpha gamma', 12, documentId, -3, null), 0);

      const few = await hybridSql('alpha gamma', 3, documentId, null, 2);
      assert.ok(few.every((r) => (r.vector_rank ?? 0) <= 3 && (r.text_rank ?? 0) <= 3), 'candidates: at least the match count');
      const two = await hybridSql('alpha gamma', 10, documentId, null, 2);
      assert.equal(two.length, 10, 'p_candidates below p_match_count still returns p_match_count rows');
      assert.equal((await hybridSql('alpha gamma', 0, documentId, null, null)).length, 1, 'at least one row');
    });

    it('rag_match_chunks keeps its columns; rag_hybrid_chunks adds context and both ranks', async () => {
      const [match] = await b.store.matchChunks(QUERY, 1, keywordDoc);
      const matchColumns: (keyof MatchRow)[] = ['document_id', 'version', 'chunk_index', 'content', 'start_ms', 'end_ms', 'speakers', 'segment_seq_start', 'segment_seq_end', 'title', 'score'];
      assert.deepEqual(Object.keys(match).sort(), [...matchColumns].sort());
      const [row] = await hybrid('planning', 1, keywordDoc);
      assert.deepEqual(Object.keys(row).sort(), [...matchColumns, 'context', 'vector_rank', 'text_rank'].sort());
      assert.deepEqual(
        [row.chunk_index, row.start_ms, row.end_ms, row.speakers, row.segment_seq_start, row.segment_seq_end, typeof row.score, row.vector_rank, row.text_rank],
        [0, 0, 999, ['Ana'], 1, 1, 'number', 1, 1],
      );
    });
  });
}
