import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** Reads a whole stream as UTF-8 text, decoding multi-byte characters split across chunks. */
export async function readAllText(stream: NodeJS.ReadableStream): Promise<string> {
  const decoder = new StringDecoder('utf8');
  const parts: string[] = [];
  for await (const chunk of stream) {
    parts.push(typeof chunk === 'string' ? chunk : decoder.write(chunk));
  }
  parts.push(decoder.end());
  return parts.join('');
}

/** uploadStream wants a stream.Readable; a bare NodeJS.ReadableStream is still async-iterable. */
export function asReadable(stream: NodeJS.ReadableStream): Readable {
  return stream instanceof Readable ? stream : Readable.from(stream);
}

/** Runs `task` over `items` with at most `limit` in flight, keeping the input order in the result. */
export async function mapWithLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
