// @ts-check
/* global process, console */
// The baseline of bench:backup-s3: stdin streamed to one S3 object with the SDK's multipart helper and nothing
// else (no hashing, no manifest, no verification), as its own Node process:
//
//   pg_dump -Fc | node bench/lib/s3-upload-stdin.mjs BUCKET KEY
//
// Endpoint and credentials come from the environment: S3_ENDPOINT (path-style), AWS_REGION,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; S3_PART_SIZE and S3_QUEUE_SIZE set the multipart part size
// (bytes) and the number of parts in flight. Prints the bytes uploaded as JSON on stdout.
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Transform } from 'node:stream';

const [Bucket, Key] = process.argv.slice(2);
if (!Bucket || !Key) {
  console.error('usage: node s3-upload-stdin.mjs BUCKET KEY < data');
  process.exit(2);
}
const client = new S3Client({
  endpoint: process.env.S3_ENDPOINT,
  region: process.env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: true,
});
let bytes = 0;
const body = process.stdin.pipe(
  new Transform({
    transform(chunk, _enc, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  }),
);
const upload = new Upload({
  client,
  params: { Bucket, Key, Body: body },
  partSize: Number(process.env.S3_PART_SIZE ?? 8 * 1024 * 1024),
  queueSize: Number(process.env.S3_QUEUE_SIZE ?? 4),
});
try {
  await upload.done();
  console.log(JSON.stringify({ bytes }));
} catch (e) {
  console.error(`upload failed: ${/** @type {Error} */ (e).message}`);
  process.exitCode = 1;
} finally {
  client.destroy();
}
