import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BatchUnreadableError } from '../errors';
import { SNIFF_BYTES, classifyHead, hasGzipMagic } from './sniff';

export type ByteSource = NodeJS.ReadableStream | AsyncIterable<Buffer>;

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError(`batch source yielded a ${typeof chunk}, expected bytes`);
}

async function* chunksOf(source: ByteSource): AsyncGenerator<Buffer> {
  for await (const chunk of source as AsyncIterable<unknown>) {
    const buffer = toBuffer(chunk);
    if (buffer.length > 0) yield buffer;
  }
}

/**
 * Reads chunks until at least `minBytes` are buffered (or the source ends), then returns them with
 * the iterator positioned after them, so sniffing never needs the whole stream.
 */
async function takeHead(
  iterator: AsyncIterator<Buffer>,
  minBytes: number,
): Promise<{ head: Buffer; ended: boolean }> {
  const parts: Buffer[] = [];
  let size = 0;
  while (size < minBytes) {
    const next = await iterator.next();
    if (next.done) return { head: Buffer.concat(parts, size), ended: true };
    parts.push(next.value);
    size += next.value.length;
  }
  return { head: parts.length === 1 ? parts[0] : Buffer.concat(parts, size), ended: false };
}

/** The sniffed head followed by the rest of the iterator; closing it early closes the source too. */
async function* rest(head: Buffer, iterator: AsyncIterator<Buffer>, ended: boolean): AsyncGenerator<Buffer> {
  try {
    if (head.length > 0) yield head;
    if (ended) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  } finally {
    await iterator.return?.(undefined);
  }
}

function isZlibError(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

async function* gunzip(compressed: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // pipeline() destroys both streams on error or early exit; the iterator then rethrows the error.
  const output = pipeline(Readable.from(compressed), createGunzip(), () => undefined);
  try {
    for await (const chunk of output as AsyncIterable<Buffer>) yield chunk;
  } catch (error) {
    if (!isZlibError(error)) throw error;
    const what = error.code === 'Z_BUF_ERROR' ? 'truncated (unexpected end of file)' : 'corrupt';
    throw new BatchUnreadableError(`gzip data is ${what}: ${error.message}`, 'truncated', { cause: error });
  } finally {
    output.destroy();
  }
}

/**
 * The batch's decompressed bytes. Gzip is detected from the magic bytes whatever the name says;
 * empty, binary and UTF-16 content fails here, before any row is parsed.
 */
export async function* batchBytes(source: ByteSource, fileName: string): AsyncGenerator<Buffer> {
  const raw = chunksOf(source)[Symbol.asyncIterator]();
  const first = await takeHead(raw, 2);
  if (first.head.length === 0) {
    throw new BatchUnreadableError(`Batch "${fileName}" is empty (0 bytes)`, 'empty');
  }
  const compressed = hasGzipMagic(first.head);
  const plain = compressed ? gunzip(rest(first.head, raw, first.ended)) : rest(first.head, raw, first.ended);
  const iterator = plain[Symbol.asyncIterator]();
  try {
    const sniffed = await takeHead(iterator, SNIFF_BYTES);
    if (sniffed.head.length === 0) {
      throw new BatchUnreadableError(`Batch "${fileName}" decompresses to 0 bytes`, 'empty');
    }
    const verdict = classifyHead(sniffed.head.subarray(0, SNIFF_BYTES));
    if (verdict.kind === 'binary') {
      throw new BatchUnreadableError(
        `Batch "${fileName}" is not text: it looks like ${verdict.what}`,
        'binary',
      );
    }
    if (verdict.kind === 'utf16') {
      throw new BatchUnreadableError(
        `Batch "${fileName}" is UTF-16 (${verdict.byteOrder}); save it as UTF-8`,
        'bad-encoding',
      );
    }
    yield* rest(sniffed.head, iterator, sniffed.ended);
  } finally {
    await iterator.return?.(undefined);
  }
}
