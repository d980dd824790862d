// Imported before pg (database.ts): pg decides at load whether it runs in a Cloudflare Worker, and where
// `navigator` is undefined (Node 20) it constructs a `Response` to find out, which loads Node's bundled undici
// (15-30 ms of every runner's start-up, issue 13). Node 21 and later define `navigator` themselves, with a
// `userAgent` of `Node.js/<major>`; this defines the same where it is missing, so pg asks it instead.
if (typeof (globalThis as { navigator?: unknown }).navigator === 'undefined') {
  Object.defineProperty(globalThis, 'navigator', {
    value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` },
    configurable: true,
    writable: true,
    enumerable: false,
  });
}

export {};
