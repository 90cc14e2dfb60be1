/**
 * Slack incoming-webhook and Discord webhook bodies for an Alert, within each API's limits (Slack: a section's
 * text at most 3,000 characters; Discord: title 256, description 4,096, field name 256 / value 1,024, 25 fields,
 * 6,000 characters per embed). Pure.
 */
import type { Alert } from './alert.ts';

const SLACK_SECTION = 3000;
const DISCORD = { title: 256, description: 4096, fieldName: 256, fieldValue: 1024, fields: 25, total: 6000 } as const;
const COLOURS = { error: 0xcf222e, warning: 0xbf8700, ok: 0x1a7f37 } as const;
const ICONS = { error: ':rotating_light:', warning: ':warning:', ok: ':white_check_mark:' } as const;

export function slackPayload(alert: Alert): Record<string, unknown> {
  const lines = [`${ICONS[alert.severity]} *${escapeSlack(alert.title)}*`];
  if (alert.text) lines.push(escapeSlack(alert.text));
  for (const f of alert.fields) lines.push(`*${escapeSlack(f.name)}:* ${escapeSlack(f.value)}`);
  lines.push(`_worker ${escapeSlack(alert.worker)} · ${alert.at.toISOString()}_`);
  const body = truncate(lines.join('\n'), SLACK_SECTION);
  return {
    text: truncate(escapeSlack(alert.title), SLACK_SECTION),
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: body } }],
  };
}

export function discordPayload(alert: Alert): Record<string, unknown> {
  const title = truncate(alert.title, DISCORD.title);
  let budget = DISCORD.total - title.length - alert.worker.length - 40;
  const description = truncate(alert.text, Math.min(DISCORD.description, Math.max(0, budget - 1000)));
  budget -= description.length;
  const fields = [];
  for (const f of alert.fields.slice(0, DISCORD.fields)) {
    const name = truncate(f.name, DISCORD.fieldName);
    const value = truncate(f.value || '—', Math.min(DISCORD.fieldValue, Math.max(1, budget - name.length)));
    if (budget - name.length - value.length < 0) break;
    budget -= name.length + value.length;
    fields.push({ name, value, inline: value.length <= 40 });
  }
  return {
    username: 'rag-worker',
    allowed_mentions: { parse: [] },
    embeds: [{ title, description, color: COLOURS[alert.severity], fields, footer: { text: `worker ${alert.worker}` }, timestamp: alert.at.toISOString() }],
  };
}

/** Slack mrkdwn's control characters. */
function escapeSlack(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return max <= 1 ? text.slice(0, max) : `${text.slice(0, max - 1)}…`;
}
