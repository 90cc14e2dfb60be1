/**
 * pgvector text literals ("[0.1,-0.2,...]"), written digit by digit into one buffer: a 1536-dimension vector
 * becomes one string instead of 1,536 number strings plus a join (this is the worker's hottest allocation).
 * Values are rounded to 8 decimal places (absolute error ≤ 5e-9, far below what cosine distance resolves);
 * magnitudes of 1e7 and more fall back to exponent notation.
 */
export type VectorLiteral = string;

const SCALE = 1e8;
const FRACTION_DIGITS = 8;
let scratch = new Uint8Array(1 << 16);
const decoder = new TextDecoder('latin1');

export function toVectorLiteral(vector: ArrayLike<number>): VectorLiteral {
  const need = vector.length * 32 + 2;
  if (scratch.length < need) scratch = new Uint8Array(need);
  const out = scratch;
  let p = 0;
  out[p++] = 91; // [
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i];
    if (!Number.isFinite(v)) throw new Error(`embedding has a non-finite value at position ${i}`);
    if (i > 0) out[p++] = 44; // ,
    if (Math.abs(v) >= 1e7) {
      for (const ch of v.toExponential(8)) out[p++] = ch.charCodeAt(0);
      continue;
    }
    let n = Math.round(v * SCALE);
    if (n === 0) {
      out[p++] = 48;
      continue;
    }
    if (n < 0) {
      out[p++] = 45; // -
      n = -n;
    }
    const whole = Math.floor(n / SCALE);
    let fraction = n - whole * SCALE;
    p = writeInt(out, p, whole);
    if (fraction > 0) {
      out[p++] = 46; // .
      let digits = FRACTION_DIGITS;
      while (fraction % 10 === 0) {
        fraction /= 10;
        digits--;
      }
      const start = p;
      p += digits;
      for (let k = p - 1; k >= start; k--) {
        out[k] = 48 + (fraction % 10);
        fraction = Math.floor(fraction / 10);
      }
    }
  }
  out[p++] = 93; // ]
  return decoder.decode(out.subarray(0, p));
}

function writeInt(out: Uint8Array, p: number, n: number): number {
  if (n < 10) {
    out[p] = 48 + n;
    return p + 1;
  }
  const digits = Math.floor(Math.log10(n)) + 1;
  for (let k = p + digits - 1; k >= p; k--) {
    out[k] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return p + digits;
}

/** Little-endian float32 base64 (the OpenAI wire format) → Float32Array, without an intermediate number[]. */
export function float32FromBase64(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer, 0, Math.floor(copy.length / 4));
}
