/**
 * What may reach PostgreSQL (src/shared/text-hygiene.ts) and the CLI's payloads built from files
 * (src/main/cli/files.ts): NUL and lone surrogates never reach a jsonb payload; invisible-only text is empty.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileJobs } from '../../src/main/cli/files.ts';
import { BadInputError } from '../../src/shared/errors.ts';
import { isInvisibleText, storableText } from '../../src/shared/text-hygiene.ts';

/** Characters JSON.stringify writes as escapes that PostgreSQL's jsonb input refuses. */
const JSONB_REFUSES = /\\u0000|\\ud[89a-f][0-9a-f]{2}/i; // JSON.stringify escapes only lone surrogates

describe('storableText', () => {
  test('removes NUL and lone surrogates, keeps everything else (pairs, controls, BOM, line breaks)', () => {
    assert.equal(storableText('a\u0000b\u0000\u0000c'), 'abc');
    assert.equal(storableText('x\uD800y\uDC00z'), 'xyz');
    assert.equal(storableText('end\uD83D'), 'end');
    assert.equal(storableText('\uDE00start'), 'start');
    assert.equal(storableText('😀 \uD83D\uDE00'), '😀 😀');
    const kept = '\uFEFFWEBVTT\r\n\t\u0007 Ünïcödé 中文 👨‍👩‍👧';
    assert.equal(storableText(kept), kept);
    assert.equal(storableText(''), '');
  });

  test('its output always serialises to JSON that jsonb accepts', () => {
    const nasty = 'a\u0000\uD800\uDBFF\uDC00b\uDFFF\uD83D\uDE00\u0000';
    assert.match(JSON.stringify(nasty), JSONB_REFUSES);
    assert.doesNotMatch(JSON.stringify(storableText(nasty)), JSONB_REFUSES);
    assert.equal(storableText(nasty), 'a\uDBFF\uDC00b\uD83D\uDE00');
  });
});

describe('isInvisibleText', () => {
  test('whitespace, format (Cf) and default-ignorable characters only → invisible', () => {
    for (const text of ['', ' \n\t', '\u200B', '\u200B\u200C\u200D\u2060\uFEFF', '\u00AD\u200E\u200F\u202A\u202E\u2066\u2069', '\u2061\u2062\u2063\u2064', '\u3164\uFE0F\u034F', '\u{E0001}\u{E0020}', '\u0600\u06DD', '\u00A0\u3000\u200B\n']) {
      assert.equal(isInvisibleText(text), true, JSON.stringify(text));
    }
  });
  test('any visible character → not invisible', () => {
    for (const text of ['a', '\u200Bx\u200B', '.', '😀', '👨\u200D👩', '中', 'ـ']) {
      assert.equal(isInvisibleText(text), false, JSON.stringify(text));
    }
  });
});

describe('fileJobs: payloads built from files', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rw-files-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('NUL bytes are removed before the payload is built (jsonb cannot hold \\u0000)', () => {
    const file = path.join(dir, 'nul.vtt');
    fs.writeFileSync(file, 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAnn: hel\u0000lo\u0000 there\n');
    const [job] = fileJobs({ files: [file] });
    assert.deepEqual(job.payload, { text: 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAnn: hello there\n' });
    assert.equal(job.format, 'vtt');
    assert.doesNotMatch(JSON.stringify(job.payload), JSONB_REFUSES);
  });

  test('a binary file is refused up front as bad input naming the file, before NULs are stripped', () => {
    const file = path.join(dir, 'picture.vtt');
    fs.writeFileSync(file, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]));
    assert.throws(
      () => fileJobs({ files: [file] }),
      (error: unknown) => error instanceof BadInputError && /^picture\.vtt looks binary/.test(error.message),
    );
    const utf16 = path.join(dir, 'utf16.vtt');
    fs.writeFileSync(utf16, Buffer.from('\uFEFFWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n', 'utf16le'));
    assert.throws(() => fileJobs({ files: [utf16] }), (error: unknown) => error instanceof BadInputError && /looks binary/.test(error.message));
  });
});
