import { describe, expect, it } from 'vitest';
import {
  blockProblem,
  blocksOf,
  cliCheck,
  cliUsageError,
  consoleCommands,
  heredocsOf,
  isBareCommand,
  jsonpathFields,
  kubectlLine,
  nxtRollbackArgs,
  OPERATOR_KEYS,
  simpleCommands,
  type Block,
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

  it('finds fences inside list items and blockquotes, with their markers, and reads the expect-error marker', () => {
    const md = [
      '1. Apply it:',
      '',
      '   <!-- docs-test: expect-error -->',
      '   ```console',
      '   $ nxt-rollback emergency --scope database',
      '     indented output',
      '   ```',
      '',
      '> Note:',
      '>',
      '> ```sh',
      '> kubectl get rbp',
      '> ```',
      '',
      '> > ~~~yaml',
      '> > kind: X',
      '> > ~~~',
      '- item',
      '  ```zsh',
      '  echo hi',
      '  ```',
    ].join('\n');
    const b = blocksOf('a.md', md);
    expect(b.map((x) => [x.line, x.lang, x.text, x.expectError])).toEqual([
      [4, 'console', '$ nxt-rollback emergency --scope database\n  indented output\n', true],
      [11, 'sh', 'kubectl get rbp\n', undefined],
      [15, 'yaml', 'kind: X\n', undefined],
      [19, 'zsh', 'echo hi\n', undefined],
    ]);
  });

  it('refuses a block in a language it does not check, an untagged or empty one, and misplaced prompts', () => {
    const block = (lang: string, text: string, more: Partial<Block> = {}): Block => ({
      file: 'a.md',
      line: 1,
      lang,
      text,
      ...more,
    });
    const ok = [
      block('sh', 'kubectl get rbp\n'),
      block('console', '$ kubectl get rbp\nNAME\n'),
      block('yaml', 'kind: X\n'),
      block('text', 'nxt-rollback status [plan] [-A]\n'),
      block('json', '{"a": 1}\n'),
      block('mermaid', 'flowchart LR\n'),
    ];
    for (const b of ok) expect(blockProblem(b), `${b.lang}: ${b.text}`).toBeUndefined();
    expect(blockProblem(block('', 'echo hi\n'))).toMatch(/without a language/);
    expect(blockProblem(block('zsh', 'echo hi\n'))).toMatch(/language "zsh" is not checked/);
    expect(blockProblem(block('shell-session', '$ echo hi\n'))).toMatch(/not checked/);
    expect(blockProblem(block('text', '$ nxt-rollback history\nNAME\n'))).toMatch(/console block/);
    expect(blockProblem(block('sh', '$ kubectl get rbp\n'))).toMatch(/prompt in a sh block/);
    expect(blockProblem(block('console', 'NAME  PHASE\nweb   Succeeded\n'))).toMatch(/without a `\$ `/);
    expect(blockProblem(block('bash', '\n'))).toMatch(/empty bash block/);
    expect(blockProblem(block('yaml', '\n'))).toMatch(/empty yaml/);
    expect(blockProblem(block('json', '{"a": 1,}\n'))).toMatch(/invalid JSON/);
    expect(blockProblem(block('text', 'x\n', { expectError: true }))).toMatch(/expect-error/);
    expect(blockProblem(block('text', 'kubectl -n shop get rbp\n'))).toMatch(/a command goes in a sh/);
    // A synopsis is text, and must name the CLI's own commands and flags.
    expect(
      blockProblem(block('text', 'nxt-rollback drill [--deployment d] [--keep]\n  [--rto <dur>] [-n ns]\n')),
    ).toBeUndefined();
    expect(blockProblem(block('text', 'nxt-rollback drill [--deployment d]\n  [--kep]\n'))).toMatch(
      /nxt-rollback drill has no --kep/,
    );
    expect(blockProblem(block('text', 'nxt-rollback drills [--keep]\n'))).toMatch(/no nxt-rollback command/);
    expect(blockProblem(block('text', 'nxt-rollback backups verify <id> [--wait] [--dry-run]\n'))).toMatch(
      /backups verify|verify has no --dry-run/,
    );
  });

  it('reads heredocs with the command that reads them, inside $(...) too', () => {
    const script = [
      "kubectl create -o jsonpath='{.status.allowed}' -f - <<'EOF'",
      'kind: SubjectAccessReview',
      'EOF',
      "PLAN=$(kubectl -n shop create -o name -f - <<'EOF'",
      'kind: RollbackPlan',
      'metadata: {generateName: drill-}',
      'EOF',
      ')',
      'cat <<-END > x.yaml',
      '\tkind: ConfigMap',
      '\tEND',
      'echo done',
    ].join('\n');
    expect(heredocsOf(script)).toEqual([
      {
        argv: ['kubectl', 'create', '-o', 'jsonpath={.status.allowed}', '-f', '-'],
        body: 'kind: SubjectAccessReview\n',
      },
      {
        argv: ['kubectl', '-n', 'shop', 'create', '-o', 'name', '-f', '-'],
        body: 'kind: RollbackPlan\nmetadata: {generateName: drill-}\n',
      },
      { argv: ['cat'], body: 'kind: ConfigMap\n' },
    ]);
    expect(simpleCommands(script).at(-1)).toEqual(['echo', 'done']);
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
    // --help does not hide an unknown option or command (commander prints the help before it looks at them).
    expect(await cliUsageError(['status', '--help', '--bogus'])).toMatch(/unknown option '--bogus'/);
    expect(await cliUsageError(['--bogus', '--help'])).toMatch(/unknown option '--bogus'/);
    expect(await cliUsageError(['backup', 'bogus', '-h'])).toMatch(/unknown command/);
    expect(await cliUsageError(['drill', '--rto', 'fast', '--help'])).toMatch(/--rto/);
    for (const ok of [
      ['approve', '--help'],
      ['backup', '--help'],
      ['validate', '-h'],
      ['help', 'drill'],
    ])
      expect(await cliUsageError(ok), ok.join(' ')).toBeUndefined();
    expect(await cliUsageError(['backup', 'now', 'shop-db', '--wait'])).toBeUndefined();
    expect(await cliUsageError(['emergency', '--scope', 'app', '--dryrun'])).toMatch(/unknown option/);
    expect(await cliUsageError(['emergancy'])).toMatch(/unknown command/);
    expect(await cliUsageError(['emergency', '--scope', 'everything'])).toMatch(/Allowed choices/);
    expect(await cliUsageError(['approve'])).toMatch(/missing required argument/);
    expect(await cliUsageError(['history', 'extra'])).toMatch(/too many arguments/);
  });

  it("runs each command's own checks on the line, not only commander's (no cluster needed)", async () => {
    const refused: [string[], RegExp][] = [
      [['emergency', '--scope', 'database'], /--scope database needs --schedule/],
      [['emergency', '--scope', 'app'], /--scope app needs at least one Deployment/],
      [['emergency', '--scope', 'app', 'web', '--backup', 'latest'], /apply to --scope database and full/],
      [['emergency', '--scope', 'database', '--schedule', 'db', '--backup', 'before=yesterday'], /RFC 3339/],
      [['emergency', '--scope', 'app', 'web', '--timeout', 'soon'], /--timeout must be a duration/],
      [['emergency', '--scope', 'app', 'web', '--validation-timeout', '7d'], /--validation-timeout/],
      [['approve', 'p', '--timeout', '5 minutes'], /--timeout must be a duration/],
      [['history', '--limit', '0'], /--limit "0"/],
      [['status', 'p', '-A'], /drop -A/],
      [['backup', 'now', '--timeout', 'x'], /--timeout/],
      [['backups', 'verify', 'latest', '--timeout', 'x'], /--timeout/],
      [['validate'], /nothing to validate/],
      [['validate', 'web', '--flags', 'shop-flags'], /go together/],
      [['readiness', '--no-database', '--schedule', 'db'], /exclude each other/],
      [['drill', '--rto', 'fast'], /--rto/],
      [['drill', '--schedule', 'db', '--no-database'], /exclude each other/],
      [['-n', 'Shop_1', 'history'], /not a namespace name/],
      [['--request-timeout', '0', 'history'], /--request-timeout/],
    ];
    for (const [args, error] of refused) expect(await cliUsageError(args), args.join(' ')).toMatch(error);
    expect(
      await cliUsageError(['emergency', '--scope', 'database', '--schedule', 'db', '--backup', 'latest']),
    ).toBeUndefined();
    expect(await cliUsageError(['validate', '--plan', 'p'])).toBeUndefined();
    expect(await cliUsageError(['approve', 'p', '--wait', '--timeout', '10m'])).toBeUndefined();
  });

  it('hands over the plan an emergency line would create (for the dry run), and refuses unexpanded variables', async () => {
    const long = 'x'.repeat(60);
    const checked = await cliCheck(['emergency', '--scope', 'app', 'web', '--name', long]);
    expect(checked.error).toBeUndefined();
    expect(checked.wouldCreate).toEqual([
      expect.objectContaining({
        kind: 'RollbackPlan',
        metadata: { name: long },
        spec: expect.objectContaining({ scope: 'app', severity: 'critical' }),
      }),
    ]);
    expect((await cliCheck(['history'])).wouldCreate).toEqual([]);
    expect((await cliCheck(['validate', 'web', '--post'])).wouldCreate).toEqual([
      expect.objectContaining({
        kind: 'RollbackPlan',
        spec: expect.objectContaining({ validateOnly: 'post' }),
      }),
    ]);
    expect((await cliCheck(['-n', '$NS', 'history'])).error).toMatch(/"\$NS": a shell variable/);
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

  it('reads what a kubectl line names: verb, resource types, operator keys, expressions', () => {
    const annotate = kubectlLine([
      '-n',
      'shop',
      'annotate',
      '--overwrite',
      'bks/shop-db',
      'rollback.nxtnewday.io/backupnow-typo=x',
      'rollback.nxtnewday.io/vetoed-by-',
    ]);
    expect(annotate).toMatchObject({ verb: 'annotate', types: ['bks'], dryRunnable: true, fromFiles: false });
    expect(annotate.keys.sort()).toEqual([
      'rollback.nxtnewday.io/backupnow-typo',
      'rollback.nxtnewday.io/vetoed-by',
    ]);
    expect(annotate.keys.filter((k) => !OPERATOR_KEYS.has(k))).toEqual([
      'rollback.nxtnewday.io/backupnow-typo',
    ]);
    expect(kubectlLine(['get', 'rollbakplanz', 'nope', '-o', 'jsonpath={.status.phaze'])).toMatchObject({
      verb: 'get',
      types: ['rollbakplanz'],
      outputs: ['jsonpath={.status.phaze'],
      dryRunnable: false,
    });
    expect(kubectlLine(['get', 'rbp,bks', '-A']).types).toEqual(['rbp', 'bks']);
    expect(kubectlLine(['-n', 'x', 'rollout', 'undo', 'deployment/web', '--to-revision=2'])).toMatchObject({
      verb: 'rollout undo',
      types: ['deployment'],
      dryRunnable: true,
    });
    expect(kubectlLine(['-n', 'x', 'rollout', 'restart', 'deployment/web']).dryRunnable).toBe(false);
    expect(kubectlLine(['set', 'image', 'deployment/web', 'nginx=nginx:1.28']).types).toEqual(['deployment']);
    expect(kubectlLine(['-n', 'x', 'events', '--for=rollbackplan/p']).types).toEqual(['rollbackplan']);
    expect(kubectlLine(['-n', 'x', 'get', '$PLAN', '-o', 'name']).types).toEqual([]);
    expect(kubectlLine(['create', 'secret', 'generic', 's', '--from-literal=a=b'])).toMatchObject({
      types: [],
      dryRunnable: true,
    });
    expect(kubectlLine(['apply', '-k', 'manifests/x']).fromFiles).toBe(true);
    const wait = kubectlLine([
      'wait',
      '--for=jsonpath={.metadata.annotations.rollback\\.nxtnewday\\.io/recordd}=x',
      'job/j',
    ]);
    expect(wait).toMatchObject({
      types: ['job'],
      keys: ['rollback.nxtnewday.io/recordd'],
      waitJsonpath: '{.metadata.annotations.rollback\\.nxtnewday\\.io/recordd}',
    });
    expect(kubectlLine(['get', 'crd', 'rollbackplans.rollback.nxtnewday.io']).keys).toEqual([]);
  });

  it('reads the fields a jsonpath expression reads, inside range and filters', () => {
    expect(jsonpathFields('{.status.phaze')).toEqual([]);
    expect(jsonpathFields('{.status.phase}{"\\n"}')).toEqual(['status.phase']);
    expect(
      jsonpathFields('{range .status.conditions[*]}{.type}{"\\t"}{.status}{end}{.status.durationSeconds}s'),
    ).toEqual([
      'status.conditions',
      'status.conditions.type',
      'status.conditions.status',
      'status.durationSeconds',
    ]);
    expect(jsonpathFields('{.status.conditions[?(@.type=="RTOMet")].status}')).toEqual([
      'status.conditions.status',
    ]);
    expect(jsonpathFields('{.metadata.annotations.rollback\\.nxtnewday\\.io/recorded}')).toEqual([
      'metadata.annotations',
    ]);
    expect(jsonpathFields('{.spec.template.spec.containers[0].image}')).toEqual([
      'spec.template.spec.containers.image',
    ]);
  });

  it('finds commands hidden in text and console output: prefixes, comments, more tools, prompts without a space', () => {
    const text = (t: string): Block => ({ file: 'a.md', line: 1, lang: 'text', text: t + '\n' });
    const console_ = (t: string): Block => ({ file: 'a.md', line: 1, lang: 'console', text: t + '\n' });
    for (const l of [
      'sudo kubectl -n shop get rbp',
      'KUBECONFIG=x kubectl get rbp',
      'kubectl delete rbp x # [danger]',
      'kubectl get rbp | grep x',
      'psql -h db -c "select 1"',
      'curl -fsS http://127.0.0.1:8080/metrics',
      'flux suspend kustomization web',
      '$ env FOO=1 nxt-rollback history',
    ])
      expect(isBareCommand(l), l).toBe(true);
    for (const l of [
      'nxt-rollback drill [--deployment d] [--keep]',
      'nxt-rollback approve <plan>',
      'kubectl get rbp|bks',
      'RollbackPlan shop/web Succeeded',
      '',
    ])
      expect(isBareCommand(l), l).toBe(false);
    expect(blockProblem(text('output\nsudo kubectl get rbp'))).toMatch(/in a text block/);
    expect(blockProblem(text('kubectl delete rbp x # [danger]'))).toMatch(/in a text block/);
    expect(blockProblem(console_('$kubectl get rbp\nout'))).toMatch(/after a `\$ ` prompt/);
    expect(blockProblem(console_('# kubectl -n shop get rbp\nout'))).toMatch(/after a `\$ ` prompt/);
    expect(blockProblem(console_('$ kubectl get rbp\n# an output line that is no command'))).toBeUndefined();
  });

  it('looks through sudo, env, xargs, watch, exec, command, eval and timeout to the command they run', () => {
    expect(
      simpleCommands(
        [
          'sudo -u root kubectl get rbp',
          'env -u X A=1 nxt-rollback status --bogus',
          'echo a | xargs -I X kubectl delete rbp X',
          "watch -n 5 'kubectl get bks'",
          'exec nxt-rollback history',
          'command kubectl version',
          'eval "kubectl get rbp -o name"',
          'timeout 5m kubectl wait --for=condition=Ready rbp/x',
        ].join('\n'),
      ),
    ).toEqual([
      ['kubectl', 'get', 'rbp'],
      ['nxt-rollback', 'status', '--bogus'],
      ['echo', 'a'],
      ['kubectl', 'delete', 'rbp', 'X'],
      ['kubectl', 'get', 'bks'],
      ['nxt-rollback', 'history'],
      ['kubectl', 'version'],
      ['kubectl', 'get', 'rbp', '-o', 'name'],
      ['kubectl', 'wait', '--for=condition=Ready', 'rbp/x'],
    ]);
  });

  it('an expect-error block holds one command: the tutorial would otherwise test only the last one', () => {
    const block = (text: string): Block => ({ file: 'a.md', line: 1, lang: 'sh', text, expectError: true });
    expect(blockProblem(block('nxt-rollback emergency --scope app\n'))).toBeUndefined();
    expect(blockProblem(block('nxt-rollback emergency --scope app\nnxt-rollback history\n'))).toMatch(
      /holds one command/,
    );
    expect(blockProblem(block('kubectl -n x get rbp; nxt-rollback emergency --scope app\n'))).toMatch(
      /holds one command/,
    );
  });
});
