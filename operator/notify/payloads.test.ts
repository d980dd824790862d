import { describe, expect, it } from 'vitest';
import { planMessage, scheduleMessage } from './messages.js';
import {
  payloadFor,
  slackPayload,
  teamsPayload,
  webhookPayload,
  type NotificationEnvelope,
} from './payloads.js';

const plan = {
  metadata: { name: 'undo-web', namespace: 'shop' },
  spec: { scope: 'app', severity: 'high' as const, reason: '5xx after the <14:00> release & more' },
};
const succeeded = {
  phase: 'Succeeded' as const,
  startedAt: '2026-11-29T09:00:00Z',
  completedAt: '2026-11-29T09:00:42Z',
  durationSeconds: 42,
  trigger: {
    firedAt: '2026-11-29T08:59:50Z',
    condition: 'checkout-down',
    type: 'DeploymentUnavailable' as const,
    observed: '0/3 available for 31s',
  },
  recoverySeconds: 52,
  deployments: [{ name: 'web', result: 'RolledBack' as const }],
};
const envelope = (message = planMessage(plan, succeeded, 'Succeeded')): NotificationEnvelope => ({
  id: 'uid-1/oncall/Succeeded',
  kind: 'RollbackPlan',
  event: 'Succeeded',
  namespace: 'shop',
  name: 'undo-web',
  uid: 'uid-1',
  severity: 'high',
  phase: 'Succeeded',
  target: 'oncall',
  timestamp: '2026-11-29T09:00:43Z',
  message,
});

describe('messages', () => {
  it('a completed rollback says how long recovery took against the objective and what changed', () => {
    const m = planMessage(plan, succeeded, 'Succeeded');
    expect(m.title).toBe('Rollback completed: shop/undo-web');
    expect(m.text).toBe('Recovered in 52s: RTO objective 5m met. Changed: Deployment web rolled back.');
    expect(m.facts).toEqual([
      { title: 'Namespace', value: 'shop' },
      { title: 'Plan', value: 'undo-web' },
      { title: 'Severity', value: 'high' },
      { title: 'Scope', value: 'app' },
      { title: 'Trigger', value: 'checkout-down (DeploymentUnavailable): 0/3 available for 31s' },
      { title: 'Recovery time', value: '52s' },
      { title: 'RTO objective', value: '5m (met)' },
      { title: 'Changed', value: 'Deployment web rolled back' },
    ]);
  });

  it('a missed objective says MISSED', () => {
    const m = planMessage(
      { ...plan, spec: { ...plan.spec, objectives: { rto: '30s' } } },
      succeeded,
      'Succeeded',
    );
    expect(m.text).toMatch(/RTO objective 30s MISSED/);
  });

  it('approval needed tells how to approve or veto, with the annotations', () => {
    const m = planMessage(
      plan,
      { phase: 'AwaitingApproval', trigger: succeeded.trigger },
      'AwaitingApproval',
    );
    expect(m.title).toBe('Approval needed: rollback shop/undo-web');
    expect(m.text).toContain(
      'kubectl -n shop annotate rbp undo-web rollback.nxtnewday.io/approved-by=<your user name>',
    );
    expect(m.text).toContain('rollback.nxtnewday.io/vetoed-by=');
  });

  it('an escalation of a plan nobody approved says how to approve', () => {
    const m = planMessage(plan, { phase: 'AwaitingApproval' }, 'Escalated', { after: '15m' });
    expect(m.title).toBe('ESCALATION: rollback shop/undo-web not finished after 15m');
    expect(m.text).toMatch(
      /^The high rollback is still AwaitingApproval\. It needs attention: nobody approved or vetoed it\. Approve: kubectl -n shop annotate rbp undo-web rollback\.nxtnewday\.io\/approved-by=/,
    );
  });

  it('a failure names the failed step and the consistent state left behind', () => {
    const m = planMessage(
      plan,
      {
        phase: 'Failed',
        durationSeconds: 12,
        conditions: [
          {
            type: 'Succeeded',
            status: 'False',
            reason: 'HTTPCheckFailed',
            message: 'step PostValidation failed: got HTTP 503',
            lastTransitionTime: '2026-11-29T09:00:12Z',
          },
        ],
        deployments: [{ name: 'web', result: 'RolledBack' }],
      },
      'Failed',
    );
    expect(m.title).toBe('Rollback FAILED: shop/undo-web');
    expect(m.text).toBe(
      "step PostValidation failed: got HTTP 503. Changed: Deployment web rolled back: see the plan's status and events.",
    );
    expect(m.facts).toContainEqual({ title: 'Reason', value: 'HTTPCheckFailed' });
  });

  it('is bounded: title, text and facts fit Slack limits whatever the status holds', () => {
    const long = 'x'.repeat(10_000);
    const m = planMessage(
      { metadata: { name: 'p'.repeat(55), namespace: 'n'.repeat(63) }, spec: { scope: 'app', reason: long } },
      {
        phase: 'Running',
        startedAt: '2026-11-29T09:00:00Z',
        trigger: { firedAt: 'x', condition: 'c', observed: long },
      },
      'Escalated',
      { after: '5m' },
    );
    expect(m.title.length).toBeLessThanOrEqual(150);
    expect(m.text.length).toBeLessThanOrEqual(2000);
    expect(m.facts.length).toBeLessThanOrEqual(10);
    for (const f of m.facts) expect(f.value.length).toBeLessThanOrEqual(500);
  });

  it('a backup failure names the run and the last good backup; an RPO breach the age against the objective', () => {
    const status = {
      rpoSeconds: 5400,
      lastSuccessfulBackup: { id: 'db-backup-1', finishedAt: '2026-11-29T07:30:00Z' },
      conditions: [
        {
          type: 'LastBackupSucceeded',
          status: 'False' as const,
          reason: 'DatabaseUnreachable',
          message: 'backup Job db-backup-2 failed: DatabaseUnreachable: connection refused',
          lastTransitionTime: '2026-11-29T09:00:00Z',
        },
        {
          type: 'RPOMet',
          status: 'False' as const,
          reason: 'ObjectiveBreached',
          message: 'newest good backup is 90m old, older than the RPO objective 1h',
          lastTransitionTime: '2026-11-29T08:30:00Z',
        },
      ],
    };
    const schedule = { metadata: { name: 'db', namespace: 'shop' }, spec: { objectives: { rpo: '1h' } } };
    const failed = scheduleMessage(schedule, status, 'BackupFailed', 'db-backup-2');
    expect(failed.title).toBe('Backup FAILED: shop/db');
    expect(failed.text).toContain('backup Job db-backup-2 failed: DatabaseUnreachable');
    expect(failed.text).toContain('The last good backup is still db-backup-1');
    expect(failed.facts).toContainEqual({ title: 'Run', value: 'db-backup-2' });
    const rpo = scheduleMessage(schedule, status, 'RPOBreached', '2026-11-29T08:30:00Z');
    expect(rpo.title).toBe('RPO breached: shop/db');
    expect(rpo.facts).toEqual(
      expect.arrayContaining([
        { title: 'RPO (newest good backup age)', value: '90m' },
        { title: 'RPO objective', value: '1h' },
      ]),
    );
  });
});

describe('payloads', () => {
  it('generic webhook: the documented nxt.rollback/v1 document', () => {
    const p = webhookPayload(envelope());
    expect(p).toEqual({
      version: 'nxt.rollback/v1',
      id: 'uid-1/oncall/Succeeded',
      kind: 'RollbackPlan',
      event: 'Succeeded',
      namespace: 'shop',
      name: 'undo-web',
      uid: 'uid-1',
      severity: 'high',
      phase: 'Succeeded',
      target: 'oncall',
      timestamp: '2026-11-29T09:00:43Z',
      title: 'Rollback completed: shop/undo-web',
      text: expect.stringContaining('Recovered in 52s'),
      facts: expect.arrayContaining([{ title: 'Plan', value: 'undo-web' }]),
    });
    expect(payloadFor('webhook', envelope())).toEqual(p);
  });

  it('Slack: text fallback, a header, the text, the facts as at most 10 fields, mrkdwn escaped', () => {
    const e = envelope(planMessage(plan, { phase: 'Running', startedAt: '2026-11-29T09:00:00Z' }, 'Started'));
    const p = slackPayload(e);
    expect(p.text).toBe(
      'Rollback started: shop/undo-web: Rolling back (scope app); RTO objective 5m. Reason: 5xx after the &lt;14:00&gt; release &amp; more.',
    );
    expect(p.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'Rollback started: shop/undo-web', emoji: false },
    });
    expect(p.blocks[1]).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
    const fields = (p.blocks[2] as { fields: { type: string; text: string }[] }).fields;
    expect(fields.length).toBeLessThanOrEqual(10);
    expect(fields[0]).toEqual({ type: 'mrkdwn', text: '*Namespace*\nshop' });
    expect(p.blocks.at(-1)).toMatchObject({ type: 'context' });
    expect(payloadFor('slack', e)).toEqual(p);
  });

  it('Slack: stays within the block limits when escaping makes the text longer', () => {
    const amp = '&'.repeat(2000);
    const p = slackPayload(
      envelope({ title: 't', text: amp, facts: [{ title: 'f', value: amp.slice(0, 500) }] }),
    );
    expect((p.blocks[1] as any).text.text.length).toBeLessThanOrEqual(3000);
    expect((p.blocks[2] as any).fields[0].text.length).toBeLessThanOrEqual(2000);
  });

  it('Teams: a message with one Adaptive Card (TextBlocks and a FactSet)', () => {
    const p = teamsPayload(envelope());
    expect(p.type).toBe('message');
    expect(p.attachments).toHaveLength(1);
    const [a] = p.attachments;
    expect(a!.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(a!.content).toMatchObject({
      $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
      type: 'AdaptiveCard',
      version: '1.4',
    });
    const [title, text, facts] = a!.content.body as any[];
    expect(title).toEqual({
      type: 'TextBlock',
      text: 'Rollback completed: shop/undo-web',
      weight: 'Bolder',
      size: 'Medium',
      wrap: true,
    });
    expect(text).toMatchObject({ type: 'TextBlock', wrap: true });
    expect(facts.type).toBe('FactSet');
    expect(facts.facts).toContainEqual({ title: 'Severity', value: 'high' });
    expect(payloadFor('msteams', envelope())).toEqual(p);
  });

  it('Teams: user text cannot render a link or emphasis (Markdown characters escaped)', () => {
    const evil = 'see [our status page](https://evil.example/login) **now** `x` _y_';
    const p = teamsPayload(envelope({ title: 't', text: evil, facts: [{ title: 'Reason', value: evil }] }));
    const [, text, facts] = p.attachments[0]!.content.body as any[];
    const escaped =
      'see \\[our status page\\]\\(https://evil.example/login\\) \\*\\*now\\*\\* \\`x\\` \\_y\\_';
    expect(text.text).toBe(escaped);
    expect(facts.facts[0].value).toBe(escaped);
    expect(text.text).not.toMatch(/(^|[^\\])\]\(/);
  });
});
