import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// docs/rollbackplan.md "Events and metrics" lists every Event reason recorded on a RollbackPlan. The code's
// reasons are the string literals passed to the recorder (run.event, the Event list a reconcile sends after
// its write, the notifier's and the trigger monitors' event callbacks) in the files that record on a plan.
const root = new URL('../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const planFiles = [
  ...readdirSync(join(root, 'operator/rollback'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => `operator/rollback/${f}`),
  'operator/gitops/suspend.ts',
  'operator/notify/notifier.ts',
];

function codeReasons(): Set<string> {
  const out = new Set<string>();
  const type = `(?:'(?:Normal|Warning)'|[\\w.]+ \\? 'Normal' : 'Warning')`;
  const call = new RegExp(
    `(?:\\.event|\\bevent|events\\.push|\\.record)\\(\\s*\\[?\\s*(?:\\w+,\\s*)?${type},\\s*([^,]+),`,
    'g',
  );
  for (const f of planFiles) {
    const src = read(f);
    for (const m of src.matchAll(call)) {
      const arg = m[1]!.trim();
      const literals = [...arg.matchAll(/'([A-Z][A-Za-z]+)'/g)].map((l) => l[1]!);
      if (literals.length) literals.forEach((l) => out.add(l));
      else if (arg === '`${step.name}Succeeded`') {
        // One per step that is not quiet for every plan (PostValidation's result ends the Succeeded Event).
        for (const s of src.matchAll(/name: '(\w+)',\s*condition: [\w.]+,(\s*\/\/[^\n]*)*\s*(quiet: true)?/g))
          if (!s[3]) out.add(`${s[1]}Succeeded`);
      } else throw new Error(`${f}: an Event reason that is not a literal: ${arg}`);
    }
  }
  return out;
}

function documentedReasons(): Set<string> {
  const doc = read('docs/rollbackplan.md');
  const section = doc.slice(doc.indexOf('## Events and metrics'), doc.indexOf('\nMetrics ('));
  const out = new Set<string>();
  for (const row of section.split('\n').filter((l) => /^\| (Normal|Warning)/.test(l)))
    for (const m of row.split('|')[2]!.matchAll(/`(\w+)`/g)) out.add(m[1]!);
  return out;
}

describe('the Events table of docs/rollbackplan.md', () => {
  it('lists exactly the reasons the code records on a RollbackPlan', () => {
    const code = codeReasons();
    expect(code.size).toBeGreaterThan(20);
    expect([...documentedReasons()].sort()).toEqual([...code].sort());
  });
});
