import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { procStartTime } from '../env/node-sweep.js';
import { recordedChildrenAlive } from '../env/processes.js';

describe('reapStaleRuns kills only the processes a dead run started (processes.ts recordedChildrenAlive)', () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const c of started.splice(0)) c.kill('SIGKILL');
  });
  const start = async (args: string[]) => {
    const c = spawn('sh', ['-c', 'sleep 30', ...args], { stdio: 'ignore' });
    started.push(c);
    await new Promise((r) => c.on('spawn', r));
    return c.pid!;
  };
  const dir = '/tmp/nxt-env-k8s-AbCdEf';

  it('"pid starttime": only while the pid is still that process', async () => {
    const pid = await start([]);
    const t = procStartTime(pid)!;
    expect(t).toMatch(/^\d+$/);
    expect(recordedChildrenAlive(dir, `${pid} ${t}\n`)).toEqual([pid]);
    // the pid now belongs to another process (it started at another time): left alone
    expect(recordedChildrenAlive(dir, `${pid} ${Number(t) + 1}\n`)).toEqual([]);
    // gone
    expect(recordedChildrenAlive(dir, `4194305 ${t}`)).toEqual([]);
  });

  it('an old file without start times: only a process whose command line names the work dir', async () => {
    const other = await start([]);
    const ours = await start(['sh', `--data-dir=${dir}/etcd`]);
    const similar = await start(['sh', `${dir}x`]);
    expect(recordedChildrenAlive(dir, `${other}\n${ours}\n${similar}`)).toEqual([ours]);
  });
});
