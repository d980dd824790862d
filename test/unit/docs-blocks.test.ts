import { describe, expect, it } from 'vitest';
import {
  blocksOf,
  cliUsageError,
  consoleCommands,
  nxtRollbackArgs,
  simpleCommands,
} from '../support/docs.js';

describe('the docs test reads the Markdown as written', () => {
  it('finds fenced blocks, their language, line and marker', () => {
    const md = [
      'text',
      '<!-- docs-test: skip (needs Docker) -->',
      '```sh',
      'kind create cluster',
      '```',
      '<!-- docs-test: fragment RollbackPlan -->',
      '',
      '```yaml',
      'spec: {}',
      '```',
      '<!-- docs-test: skip -->',
      '```bash',
      'x',
      '```',
      '<!-- docs-test: skp (typo) -->',
      '```bash',
      'y',
      '```',
    ].join('\n');
    const b = blocksOf('a.md', md);
    expect(b.map((x) => [x.line, x.lang, x.skip, x.fragment, x.badMarker])).toEqual([
      [3, 'sh', 'needs Docker', undefined, undefined],
      [8, 'yaml', undefined, 'RollbackPlan', undefined],
      [12, 'bash', '', undefined, undefined],
      [16, 'bash', undefined, undefined, 'skp (typo)'],
    ]);
    expect(b[0]!.text).toBe('kind create cluster\n');
  });

  it('splits shell into simple commands: quotes, $(...), heredocs, continuations, operators', () => {
    const script = [
      "me=$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')",
      'kubectl -n shop annotate rollbackplan x \\',
      '  a="$me" b="p99 > 2s"   # a comment',
      "PLAN=$(kubectl create -o name -f - <<'EOF'",
      'kind: RollbackPlan',
      'EOF',
      ')',
      'until [ "$(kubectl get x)" = y ]; do sleep 1; done',
      'FOO=1 bin/nxt-rollback -n shop history | head -3 && echo ok > /dev/null 2>&1',
    ].join('\n');
    expect(simpleCommands(script)).toEqual([
      ['kubectl', 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
      ['kubectl', '-n', 'shop', 'annotate', 'rollbackplan', 'x', 'a=$me', 'b=p99 > 2s'],
      ['kubectl', 'create', '-o', 'name', '-f', '-'],
      ['kubectl', 'get', 'x'],
      ['[', '$(kubectl get x)', '=', 'y', ']'],
      ['sleep', '1'],
      ['bin/nxt-rollback', '-n', 'shop', 'history'],
      ['head', '-3'],
      ['echo', 'ok'],
    ]);
  });

  it('reads the commands of a console block, not its output', () => {
    expect(consoleCommands('$ kubectl get rbp \\\n  -n shop\nNAME  PHASE\n$ echo hi\nhi\n')).toBe(
      'kubectl get rbp \\\n  -n shop\necho hi\n',
    );
  });

  it("checks nxt-rollback command lines with the CLI's own parser", async () => {
    expect(
      await cliUsageError(['-n', 'shop', 'emergency', '--scope', 'app', 'web', '--dry-run']),
    ).toBeUndefined();
    expect(await cliUsageError(['--help'])).toBeUndefined();
    expect(await cliUsageError(['backup', 'now', 'shop-db', '--wait'])).toBeUndefined();
    expect(await cliUsageError(['emergency', '--scope', 'app', '--dryrun'])).toMatch(/unknown option/);
    expect(await cliUsageError(['emergancy'])).toMatch(/unknown command/);
    expect(await cliUsageError(['emergency', '--scope', 'everything'])).toMatch(/Allowed choices/);
    expect(await cliUsageError(['approve'])).toMatch(/missing required argument/);
    expect(await cliUsageError(['history', 'extra'])).toMatch(/too many arguments/);
  });

  it('recognises the ways the docs run the CLI', () => {
    const scripts = {
      cli: 'bin/nxt-rollback',
      'rollback:emergency-app': 'bin/nxt-rollback emergency --scope app',
    };
    expect(nxtRollbackArgs(['kubectl', 'nxt-rollback', 'history'], scripts)).toEqual(['history']);
    expect(nxtRollbackArgs(['bin/nxt-rollback', '--help'], scripts)).toEqual(['--help']);
    expect(nxtRollbackArgs(['npm', 'run', 'rollback:emergency-app', '--', 'web'], scripts)).toEqual([
      'emergency',
      '--scope',
      'app',
      'web',
    ]);
    expect(nxtRollbackArgs(['kubectl', 'get', 'rbp'], scripts)).toBeUndefined();
  });
});
