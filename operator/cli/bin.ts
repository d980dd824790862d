#!/usr/bin/env node
// Entry point of the nxt-rollback CLI (bin/nxt-rollback, bin/kubectl-nxt_rollback).
import { exitAfterFlush } from './exit.js';
import { main } from './main.js';

main(process.argv.slice(2)).then(
  // Watches and keep-alive sockets would hold the process open: exit explicitly, once the output is flushed.
  (code) => exitAfterFlush(code),
  (e) => {
    process.stderr.write(`error: ${String(e)}\n`);
    exitAfterFlush(1);
  },
);
