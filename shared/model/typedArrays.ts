/** Typed arrays as base64 text, for compact JSON artifacts (little-endian, as every Node host is). */

type TypedArrayConstructor<T> = {
  new (buffer: ArrayBuffer, byteOffset?: number, length?: number): T;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

export function encodeTypedArray(array: ArrayBufferView): string {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64');
}

/** The base64 text is malformed or its length is not a whole number of elements. */
export class TypedArrayDecodeError extends Error {}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeTypedArray<T>(text: string, type: TypedArrayConstructor<T>, what: string): T {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new TypedArrayDecodeError(`${what} is not valid base64`);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.byteLength % type.BYTES_PER_ELEMENT !== 0) {
    throw new TypedArrayDecodeError(
      `${what} has ${bytes.byteLength} bytes, not a whole number of ${type.name} elements`,
    );
  }
  // Copied into a fresh buffer: Buffer's pool offset is not aligned for 16/32-bit views.
  const aligned = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(aligned).set(bytes);
  return new type(aligned);
}
