/**
 * Claude's part of one job: situating chunks in their transcript window (contextual retrieval) and analysing the
 * transcript, through the worker's shared ClaudeScheduler.
 *
 * Prompt caching: every request of a window sends the same system block (instructions + the window's passages,
 * marked for caching); only the user turn differs. The first request of a window goes alone and writes the
 * cache; the window's other requests are sent once it has answered, so they read the cache instead of all
 * paying to write it in parallel.
 *
 * When Claude stays unavailable (a worker-level fault such as a revoked key, or transient failures beyond the
 * retries), `required` decides: true lets the error reach the job (it waits in the queue and is retried, or the
 * worker pauses on a fault); false gives Claude up for the rest of this job — its remaining chunks are embedded
 * without context and the analysis is stored as skipped, with the reason.
 */
import { BadInputError, CategorizedError, JobAbortedError, LeaseLostError, messageOf, ProviderResponseError, RetryableError, WorkerFatalError } from '../../shared/errors.ts';
import { parseAnalysis, ANALYSIS_JSON_SCHEMA, type AnalysisBody, type StoredAnalysis } from '../../shared/claude/analysis.ts';
import type { PriceTable } from '../../shared/claude/prices.ts';
import {
  ANALYSIS_MAX_TOKENS,
  analysisRequestText,
  cleanContext,
  CONTEXT_MAX_TOKENS,
  contextRequestText,
  estimateClaudeTokens,
  MERGE_INSTRUCTIONS,
  mergeRequestText,
  type TranscriptWindow,
} from '../../shared/claude/prompts.ts';
import { addUsage, claudeUsage, type Usage } from '../../shared/claude/usage.ts';
import type { Chunk } from '../../shared/types.ts';
import type { Logger } from '../logging/logger.ts';
import type { ClaudeRequest, ClaudeResponse } from './claude-client.ts';
import type { ClaudeScheduler } from './claude-scheduler.ts';

export interface ClaudeSettings {
  scheduler: ClaudeScheduler;
  contextModel: string;
  analysisModel: string;
  contexts: boolean;
  analysis: boolean;
  required: boolean;
  /** Largest transcript window (estimated Claude tokens) sent as one cached block. */
  windowTokens: number;
  effort?: 'low' | 'medium' | 'high';
  prices: PriceTable;
}

/** Output tokens a context answer is expected to use (the buckets are corrected from the real count). */
const CONTEXT_OUTPUT_ESTIMATE = 150;
const ANALYSIS_OUTPUT_ESTIMATE = 1500;

interface WindowState {
  window: TranscriptWindow;
  /** Settles once the window's first context request has answered (or failed): the cache is written. */
  warm: Promise<void> | undefined;
  /** Batches of the window whose contexts have not been asked for yet. */
  batchesLeft: number;
  /** Opens when the cache is written, or when it is known that no context request will write it. */
  gate: Promise<void>;
  openGate: () => void;
}

export class DocumentClaude {
  private readonly settings: ClaudeSettings;
  private readonly jobKey: string;
  private readonly priority: number;
  private readonly logger: Logger;
  private readonly signal: AbortSignal;
  private readonly windows = new Map<number, WindowState>();
  private readonly analysisParts: Promise<AnalysisBody | null>[] = [];
  private usage: Usage = {};
  /** Why Claude was given up for this job (required=false), if it was. */
  degraded: string | undefined;
  /** Contexts that Claude declined to write (stop_reason refusal): embedded without context. */
  refusals = 0;

  constructor(settings: ClaudeSettings, job: { id: string; priority: number }, signal: AbortSignal, logger: Logger) {
    this.settings = settings;
    this.jobKey = job.id;
    this.priority = job.priority;
    this.signal = signal;
    this.logger = logger;
  }

  /** The usage of the answers received since the last call (recorded with the next save). */
  takeUsage(): Usage {
    const u = this.usage;
    this.usage = {};
    return u;
  }

  /**
   * A window whose `batches` save batches will each ask for their contexts (contexts(), once per batch, even when
   * none of its chunks needs one). Call before contexts() and analyseWindow() for it.
   */
  openWindow(window: TranscriptWindow, batches: number): void {
    let openGate = () => {};
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    this.windows.set(window.index, { window, warm: undefined, batchesLeft: batches, gate, openGate });
    if (batches === 0 || !this.settings.contexts) openGate();
  }

  /** Context for each chunk of one save batch (by index; null: none — degraded or refused). */
  async contexts(window: TranscriptWindow, chunks: readonly Chunk[]): Promise<Map<number, string | null>> {
    const out = new Map<number, string | null>();
    const state = this.stateOf(window);
    state.batchesLeft--;
    if (!this.settings.contexts || chunks.length === 0) {
      if (state.batchesLeft <= 0 && !state.warm) state.openGate();
      return out;
    }
    const pending = [...chunks];
    if (!state.warm) {
      const first = pending.shift()!;
      const p = this.context(window, first, true).then((c) => void out.set(first.index, c));
      state.warm = p.then(state.openGate, state.openGate);
      await p;
    } else {
      await state.warm;
    }
    await Promise.all(pending.map((chunk) => this.context(window, chunk, false).then((c) => void out.set(chunk.index, c))));
    return out;
  }

  /** Starts the analysis of one window (in the background; finishAnalysis collects it). */
  analyseWindow(window: TranscriptWindow): void {
    if (!this.settings.analysis) return;
    const state = this.stateOf(window);
    const part = (async () => {
      // With contexts on, the window's first context request writes the cache this request can read.
      await state.gate;
      const user = analysisRequestText(window, null);
      // After the window's cache was written, the transcript is a cache read: not counted by the input limit.
      const input = estimateClaudeTokens(user) + (state.warm ? 100 : window.tokens);
      return this.structured(
        { model: this.settings.analysisModel, system: [{ text: window.text, cache: true }], user, maxTokens: ANALYSIS_MAX_TOKENS },
        input,
      );
    })();
    part.catch(() => {}); // observed by finishAnalysis
    this.analysisParts.push(part);
  }

  /**
   * The document's analysis once every window's part has answered (merged when there are several), or a skipped
   * analysis saying why; null when analysis is off.
   */
  async finishAnalysis(): Promise<StoredAnalysis | null> {
    if (!this.settings.analysis) return null;
    const model = this.settings.analysisModel;
    const createdAt = new Date().toISOString();
    const parts = await Promise.all(this.analysisParts);
    if (this.degraded || parts.some((p) => p === null)) {
      return { status: 'skipped', model, reason: this.degraded ?? 'Claude was unavailable', created_at: createdAt };
    }
    if (parts.length === 0) return { status: 'skipped', model, reason: 'the transcript has no text', created_at: createdAt };
    let body: AnalysisBody | null = parts[0];
    if (parts.length > 1) {
      const text = mergeRequestText(parts);
      body = await this.structured({ model, system: [{ text: MERGE_INSTRUCTIONS }], user: text, maxTokens: ANALYSIS_MAX_TOKENS }, estimateClaudeTokens(text));
    }
    if (body === null) return { status: 'skipped', model, reason: this.degraded ?? 'Claude was unavailable', created_at: createdAt };
    return { status: 'complete', model, windows: parts.length, created_at: createdAt, ...body };
  }

  private stateOf(window: TranscriptWindow): WindowState {
    let state = this.windows.get(window.index);
    if (!state) {
      this.openWindow(window, 1);
      state = this.windows.get(window.index)!;
    }
    return state;
  }

  private async context(window: TranscriptWindow, chunk: Chunk, first: boolean): Promise<string | null> {
    if (this.degraded) return null;
    const user = contextRequestText(chunk);
    const uncached = estimateClaudeTokens(user) + 50;
    const response = await this.ask(
      { model: this.settings.contextModel, system: [{ text: window.text, cache: true }], user, maxTokens: CONTEXT_MAX_TOKENS },
      { inputTokens: first ? uncached + window.tokens : uncached, outputTokens: CONTEXT_OUTPUT_ESTIMATE },
    );
    if (response === null) return null;
    if (response.stopReason === 'refusal' || response.text.trim() === '') {
      this.refusals++;
      this.logger.warn(`Claude wrote no context for chunk ${chunk.index} (${response.stopReason ?? 'empty answer'}): it is embedded without one`, {
        event: 'claude_context_refused',
        chunk: chunk.index,
      });
      return null;
    }
    return cleanContext(response.text);
  }

  /** A structured (JSON schema) request, validated; a malformed answer is asked once more. null: degraded. */
  private async structured(request: Omit<ClaudeRequest, 'jsonSchema' | 'effort'>, inputEstimate: number): Promise<AnalysisBody | null> {
    let problem = '';
    for (let attempt = 1; attempt <= 2; attempt++) {
      const response = await this.ask({ ...request, jsonSchema: ANALYSIS_JSON_SCHEMA }, { inputTokens: inputEstimate, outputTokens: ANALYSIS_OUTPUT_ESTIMATE });
      if (response === null) return null;
      const parsed = response.stopReason === 'refusal' ? { ok: false as const, error: 'Claude declined to analyse it (stop_reason refusal)' } : parseAnalysis(response.text);
      if (parsed.ok) return parsed.value;
      problem = response.stopReason === 'max_tokens' ? `the answer was cut off at ${request.maxTokens} tokens (${parsed.error})` : parsed.error;
      this.logger.warn(`Claude's analysis answer is malformed (${problem})${attempt === 1 ? '; asking again' : ''}`, { event: 'claude_analysis_malformed', attempt });
    }
    return this.giveUp(new ProviderResponseError(`Claude's analysis answer was malformed twice: ${problem}`));
  }

  /** One request through the scheduler, with usage recorded; null when Claude has been given up for this job. */
  private async ask(request: ClaudeRequest, estimate: { inputTokens: number; outputTokens: number }): Promise<ClaudeResponse | null> {
    if (this.degraded) return null;
    this.signal.throwIfAborted();
    const full: ClaudeRequest = this.settings.effort ? { ...request, effort: this.settings.effort } : request;
    let response: ClaudeResponse;
    try {
      response = await this.settings.scheduler.send(this.jobKey, this.priority, full, estimate);
    } catch (error) {
      return this.giveUp(error);
    }
    this.usage = addUsage(this.usage, claudeUsage(this.settings.prices, response.model || request.model, response.usage));
    return response;
  }

  /** RAG_CLAUDE_REQUIRED=false: note why and go on without Claude. Otherwise (or for aborts and bugs) rethrow. */
  private giveUp(error: unknown): null {
    const stopping = error instanceof JobAbortedError || error instanceof LeaseLostError || this.signal.aborted;
    const claudeFailure = error instanceof WorkerFatalError || error instanceof RetryableError || error instanceof BadInputError;
    if (stopping || this.settings.required || !claudeFailure || !(error instanceof CategorizedError)) throw error;
    if (!this.degraded) {
      this.degraded = `Claude unavailable (${messageOf(error)})`;
      this.logger.warn(`${this.degraded}: RAG_CLAUDE_REQUIRED=false, so the rest of this job is embedded without context and its analysis is skipped`, {
        event: 'claude_degraded',
      });
    }
    return null;
  }
}
