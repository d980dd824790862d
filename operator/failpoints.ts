/**
 * Failpoints for crash-consistency tests (the etcd/gofail idea): when NXT_FAILPOINTS names a point, the
 * process kills itself with SIGKILL right there, as a node crash or OOM kill would. Unset in production.
 */
const enabled = new Set((process.env.NXT_FAILPOINTS ?? '').split(',').filter(Boolean));

export function failpoint(name: string): void {
  if (enabled.has(name)) {
    process.stderr.write(`failpoint ${name}: killing the process\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
