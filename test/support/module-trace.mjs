// `node --import <this file> ...` with NXT_MODULE_TRACE=FILE: appends the file: URL of every ES module the
// process loads (a loader hook, module-trace-hooks.mjs) and, at exit, the path of every CommonJS module in
// require's cache, one per line ("esm URL" / "cjs PATH"). Plain JavaScript: it runs under node without tsx,
// in front of the bundle (test/integration/bundle.test.ts) as well as the tsc build.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import process from 'node:process';

const file = process.env.NXT_MODULE_TRACE;
if (file) {
  register('./module-trace-hooks.mjs', import.meta.url, { data: { file } });
  process.on('exit', () => {
    const cjs = Object.keys(createRequire(import.meta.url).cache);
    appendFileSync(file, cjs.map((p) => `cjs ${p}\n`).join(''));
  });
}
