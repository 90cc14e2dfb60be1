/**
 * Loopback Slack incoming-webhook and Discord webhook receivers that check each request against the service's
 * wire format and limits (as the services would reject it), and record the messages. Slack answers 200 "ok",
 * Discord 204; `behaviour` can make them slow, refuse (429 with retry-after), or fail.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedMessage {
  body: Record<string, unknown>;
  /** The message's text, flattened (Slack: blocks' text; Discord: title, description and fields). */
  text: string;
  /** Why the service would refuse it, or empty. */
  problems: string[];
}

export interface Receiver {
  url: string;
  kind: 'slack' | 'discord';
  messages: ReceivedMessage[];
  requests: number;
  behaviour: { delayMs?: number; refuseFirst?: number; status?: number };
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(kind: 'slack' | 'discord', behaviour: Receiver['behaviour'] = {}): Promise<Receiver> {
  const messages: ReceivedMessage[] = [];
  const waiters = new Set<() => void>();
  let refused = 0;
  const receiver: Receiver = {
    url: '',
    kind,
    messages,
    requests: 0,
    behaviour,
    waitFor(n, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (messages.length >= n) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${kind} receiver: ${messages.length} of ${n} messages within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', async () => {
      if (req.method === 'GET') {
        // Discord answers GET on a webhook URL with the webhook (Slack has no GET).
        res.writeHead(kind === 'discord' ? 200 : 405, { 'content-type': 'application/json' });
        return res.end(kind === 'discord' ? '{"type":1,"id":"123456789","name":"rag-worker","channel_id":"1"}' : '');
      }
      receiver.requests++;
      if (receiver.behaviour.delayMs) await new Promise((r) => setTimeout(r, receiver.behaviour.delayMs));
      if (refused < (receiver.behaviour.refuseFirst ?? 0)) {
        refused++;
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
        return res.end('{"message":"You are being rate limited.","retry_after":0.1}');
      }
      if (receiver.behaviour.status) {
        res.writeHead(receiver.behaviour.status);
        return res.end('error');
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        res.writeHead(400);
        return res.end('invalid_payload');
      }
      const checked = kind === 'slack' ? checkSlack(body) : checkDiscord(body);
      messages.push({ body, ...checked });
      for (const w of [...waiters]) w();
      if (req.headers['content-type'] !== 'application/json') checked.problems.push('content-type is not application/json');
      if (kind === 'slack') {
        res.writeHead(checked.problems.length ? 400 : 200, { 'content-type': 'text/plain' });
        res.end(checked.problems.length ? 'invalid_blocks' : 'ok');
      } else {
        res.writeHead(checked.problems.length ? 400 : 204);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  receiver.url = kind === 'slack' ? `http://127.0.0.1:${port}/services/T000/B000/slack-secret-XYZ` : `http://127.0.0.1:${port}/api/webhooks/123456789/discord-secret-XYZ`;
  return receiver;
}

function checkSlack(body: Record<string, unknown>): { text: string; problems: string[] } {
  const problems: string[] = [];
  if (typeof body.text !== 'string' || body.text === '') problems.push('no text (the notification fallback)');
  const blocks = body.blocks;
  const texts: string[] = [];
  if (blocks !== undefined) {
    if (!Array.isArray(blocks) || blocks.length > 50) problems.push('blocks: expected at most 50');
    for (const b of (Array.isArray(blocks) ? blocks : []) as { type?: string; text?: { type?: string; text?: string } }[]) {
      if (b.type !== 'section') problems.push(`block type ${b.type}`);
      if (b.text?.type !== 'mrkdwn' && b.text?.type !== 'plain_text') problems.push('section text type');
      if (typeof b.text?.text !== 'string' || b.text.text.length === 0 || b.text.text.length > 3000) problems.push(`section text length ${b.text?.text?.length}`);
      texts.push(b.text?.text ?? '');
    }
  }
  return { text: [String(body.text ?? ''), ...texts].join('\n'), problems };
}

function checkDiscord(body: Record<string, unknown>): { text: string; problems: string[] } {
  const problems: string[] = [];
  const embeds = (body.embeds ?? []) as { title?: string; description?: string; fields?: { name: string; value: string }[]; footer?: { text: string } }[];
  if (!Array.isArray(embeds) || embeds.length > 10) problems.push('embeds: at most 10');
  if (typeof body.content === 'string' && body.content.length > 2000) problems.push('content over 2000');
  if (!body.content && embeds.length === 0) problems.push('neither content nor embeds');
  const texts: string[] = [String(body.content ?? '')];
  for (const e of embeds) {
    let total = 0;
    if ((e.title?.length ?? 0) > 256) problems.push('title over 256');
    if ((e.description?.length ?? 0) > 4096) problems.push('description over 4096');
    if ((e.fields?.length ?? 0) > 25) problems.push('over 25 fields');
    total += (e.title?.length ?? 0) + (e.description?.length ?? 0) + (e.footer?.text.length ?? 0);
    texts.push(e.title ?? '', e.description ?? '');
    for (const f of e.fields ?? []) {
      if (!f.name || f.name.length > 256) problems.push('field name length');
      if (!f.value || f.value.length > 1024) problems.push('field value length');
      total += f.name.length + f.value.length;
      texts.push(`${f.name}: ${f.value}`);
    }
    if (total > 6000) problems.push(`embed total ${total} over 6000`);
  }
  return { text: texts.join('\n'), problems };
}
