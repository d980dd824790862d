import { boundText } from '../kube/bounded.js';
import type { NotificationMessage } from './messages.js';

// The three wire formats. The generic webhook is ours and versioned (docs/notifications.md): a receiver can
// rely on `version` to know the shape. Slack and Teams get what their incoming webhooks render.

/** Version of the generic webhook document; a change that is not additive gets a new one. */
export const WEBHOOK_PAYLOAD_VERSION = 'nxt.rollback/v1';

export interface NotificationEnvelope {
  /** `<uid>/<record id>`: also sent as the X-Nxt-Notification-Id header, so receivers can drop a resend. */
  id: string;
  kind: 'RollbackPlan' | 'BackupSchedule';
  event: string;
  namespace: string;
  name: string;
  uid: string;
  /** RollbackPlan: spec.severity (absent when not set). */
  severity?: string;
  /** RollbackPlan: status.phase at the time the message was built. */
  phase?: string;
  target: string;
  /** RFC 3339 time the message was built. */
  timestamp: string;
  message: NotificationMessage;
}

export interface WebhookPayload {
  version: typeof WEBHOOK_PAYLOAD_VERSION;
  id: string;
  kind: string;
  event: string;
  namespace: string;
  name: string;
  uid: string;
  severity?: string;
  phase?: string;
  target: string;
  timestamp: string;
  title: string;
  text: string;
  facts: { title: string; value: string }[];
}

export function webhookPayload(e: NotificationEnvelope): WebhookPayload {
  return {
    version: WEBHOOK_PAYLOAD_VERSION,
    id: e.id,
    kind: e.kind,
    event: e.event,
    namespace: e.namespace,
    name: e.name,
    uid: e.uid,
    ...(e.severity ? { severity: e.severity } : {}),
    ...(e.phase ? { phase: e.phase } : {}),
    target: e.target,
    timestamp: e.timestamp,
    title: e.message.title,
    text: e.message.text,
    facts: e.message.facts,
  };
}

/** Slack mrkdwn treats &, < and > as control characters (links, mentions): escape them in our text. */
const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A Slack incoming-webhook message: `text` (the notification fallback) plus Block Kit blocks (a header,
 * the text, the facts as section fields: at most 10, as Slack allows).
 */
export function slackPayload(e: NotificationEnvelope) {
  const { title, text, facts } = e.message;
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: title, emoji: false } },
    // Escaping can make a text longer: bounded again to Slack's limits (section 3000, field 2000).
    { type: 'section', text: { type: 'mrkdwn', text: boundText(slackEscape(text), 3000) } },
  ];
  if (facts.length)
    blocks.push({
      type: 'section',
      fields: facts.slice(0, 10).map((f) => ({
        type: 'mrkdwn',
        text: boundText(`*${slackEscape(f.title)}*\n${slackEscape(f.value)}`, 2000),
      })),
    });
  blocks.push({
    type: 'context',
    elements: [
      { type: 'mrkdwn', text: slackEscape(`${e.kind} ${e.namespace}/${e.name} · ${e.event} · ${e.id}`) },
    ],
  });
  return { text: slackEscape(`${title}: ${text}`), blocks };
}

/**
 * Adaptive Card TextBlocks and fact values render a Markdown subset: text from users (spec.reason, an approval
 * reason) must not become a link or emphasis, so the characters of links and emphasis are backslash-escaped.
 * (A bare URL may still be auto-linked by the client.)
 */
export function teamsEscape(s: string): string {
  return s.replace(/[\\`*_[\]()~<>]/g, (c) => `\\${c}`);
}

/** Adaptive Card schema version: 1.4 is what Teams renders everywhere (desktop, web, mobile). */
export const ADAPTIVE_CARD_VERSION = '1.4';

/**
 * A Microsoft Teams Workflows ("Post to a channel when a webhook request is received") message: one Adaptive
 * Card attachment with the title, the text and the facts as a FactSet.
 */
export function teamsPayload(e: NotificationEnvelope) {
  const { title, facts } = e.message;
  const text = teamsEscape(e.message.text);
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: ADAPTIVE_CARD_VERSION,
          body: [
            { type: 'TextBlock', text: title, weight: 'Bolder', size: 'Medium', wrap: true },
            { type: 'TextBlock', text, wrap: true },
            ...(facts.length
              ? [
                  {
                    type: 'FactSet',
                    facts: facts.map((f) => ({ title: f.title, value: teamsEscape(f.value) })),
                  },
                ]
              : []),
            {
              type: 'TextBlock',
              text: `${e.kind} ${e.namespace}/${e.name} · ${e.event} · ${e.id}`,
              isSubtle: true,
              size: 'Small',
              wrap: true,
            },
          ],
        },
      },
    ],
  };
}

export function payloadFor(type: 'webhook' | 'slack' | 'msteams', e: NotificationEnvelope): unknown {
  if (type === 'slack') return slackPayload(e);
  if (type === 'msteams') return teamsPayload(e);
  return webhookPayload(e);
}
