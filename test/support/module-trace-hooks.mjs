// The loader hook of module-trace.mjs: runs on Node's loader thread, so it writes synchronously.
import { appendFileSync } from 'node:fs';

let file = '';

export function initialize(data) {
  file = data.file;
}

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:')) appendFileSync(file, `esm ${url}\n`);
  return nextLoad(url, context);
}
