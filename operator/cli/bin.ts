#!/usr/bin/env node
// Entry point of the nxt-rollback CLI (bin/nxt-rollback, bin/kubectl-nxt_rollback).
import { main } from './main.js';

main(process.argv.slice(2)).then(
  // Watches and keep-alive sockets would hold the process open; stdout to a pipe, file or terminal is written
  // synchronously on Linux, so exiting here loses no output.
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`error: ${String(e)}\n`);
    process.exit(1);
  },
);
