/**
 * Claude and the price table from the configuration: the client and its scheduler (loaded only when Claude is
 * enabled), the settings every job's DocumentClaude uses, and RAG_PRICES read from its file when it names one.
 */
import fs from 'node:fs';
import { ConfigError, type Config } from '../../shared/config.ts';
import { claudePriceOf, mergePrices, PRICES_AS_OF, type PriceTable } from '../../shared/claude/prices.ts';
import type { Logger } from '../logging/logger.ts';
import type { ClaudeSettings } from './document-claude.ts';

/** The price table: the built-in list prices with RAG_PRICES laid over them. A bad value stops start-up naming it. */
export function loadPrices(config: Config): PriceTable {
  const value = config.prices;
  if (value === undefined) return mergePrices(undefined);
  const inline = value.trimStart().startsWith('{');
  let text = value;
  if (!inline) {
    try {
      text = fs.readFileSync(value, 'utf8');
    } catch (error) {
      throw new ConfigError([`RAG_PRICES=${JSON.stringify(value)}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
    }
  }
  try {
    return mergePrices(text);
  } catch (error) {
    throw new ConfigError([`RAG_PRICES${inline ? '' : `=${JSON.stringify(value)}`}: ${(error as Error).message}`]);
  }
}

/** Claude as the configuration asks for it, or undefined when RAG_ENABLE_CLAUDE_ANALYSIS is off. */
export async function createClaude(config: Config, prices: PriceTable, logger: Logger): Promise<ClaudeSettings | undefined> {
  if (!config.enableClaudeAnalysis) return undefined;
  const [{ createClaudeClient }, { ClaudeScheduler }] = await Promise.all([import('./claude-client.ts'), import('./claude-scheduler.ts')]);
  const client = createClaudeClient({ apiKey: config.anthropicApiKey ?? '', baseURL: config.anthropicBaseUrl, timeoutMs: config.claudeTimeoutMs });
  const scheduler = new ClaudeScheduler({
    client,
    concurrency: config.claudeConcurrency,
    rpm: config.claudeRpm,
    itpm: config.claudeItpm,
    otpm: config.claudeOtpm,
    maxRetries: config.providerRetries,
    backoff: { baseMs: 1000, maxMs: 60_000 },
    // Without RAG_CLAUDE_REQUIRED nothing pauses the worker on a Claude fault: try Claude again after a minute.
    faultRetryMs: config.claudeRequired ? undefined : 60_000,
    logger,
  });
  const settings: ClaudeSettings = {
    scheduler,
    contextModel: config.claudeModel,
    analysisModel: config.claudeAnalysisModel ?? config.claudeModel,
    contexts: config.claudeFeatures.context,
    analysis: config.claudeFeatures.analysis,
    required: config.claudeRequired,
    windowTokens: config.claudeWindowTokens,
    effort: config.claudeEffort === 'none' ? undefined : config.claudeEffort,
    prices,
  };
  for (const model of new Set([settings.contextModel, settings.analysisModel])) {
    if (!claudePriceOf(prices, model)) {
      logger.warn(`No price for Claude model ${model} in the price table (list prices of ${PRICES_AS_OF}): its tokens are counted but not its cost; add it with RAG_PRICES`, {
        event: 'price_unknown',
        model,
      });
    }
  }
  return settings;
}

/** A request that proves the key and the model work and costs nothing: token counting. */
export async function probeClaude(config: Config): Promise<void> {
  const { countClaudeTokens } = await import('./claude-client.ts');
  await countClaudeTokens({ apiKey: config.anthropicApiKey ?? '', baseURL: config.anthropicBaseUrl, timeoutMs: config.claudeTimeoutMs }, config.claudeModel);
}
