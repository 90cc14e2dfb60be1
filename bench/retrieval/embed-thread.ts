/** Piscina thread entry for the bench's per-thread probe: embeds with one candidate, loaded on first use. */
import { candidate, type Embed } from './candidates.ts';

const loaded = new Map<string, Promise<Embed>>();

export default async function embed(task: { candidate: string; inputs: string[] }): Promise<number> {
  let embedder = loaded.get(task.candidate);
  if (!embedder) {
    embedder = candidate(task.candidate).load();
    loaded.set(task.candidate, embedder);
  }
  const vectors = await (await embedder)(task.inputs);
  return vectors.length;
}
