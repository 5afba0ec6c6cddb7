import { InitialSchema1796083200000 } from './1796083200000-initial-schema.js';
import { PublicSessionId1796169600000 } from './1796169600000-public-session-id.js';
import { LeaseEpoch1796256000000 } from './1796256000000-lease-epoch.js';
import { MessageEdits1796342400000 } from './1796342400000-message-edits.js';
import { SessionsIndex1796410800000 } from './1796410800000-sessions-index.js';
import { WebhookOutbox1796414400000 } from './1796414400000-webhook-outbox.js';

/** Fellowship's migrations, oldest first. Add new ones at the end; never edit one that has shipped. */
export const FELLOWSHIP_MIGRATIONS = [
  InitialSchema1796083200000,
  PublicSessionId1796169600000,
  LeaseEpoch1796256000000,
  MessageEdits1796342400000,
  SessionsIndex1796410800000,
  WebhookOutbox1796414400000,
];

/** Where executed migrations are recorded (TypeORM's own table format, under Fellowship's name). */
export const FELLOWSHIP_MIGRATIONS_TABLE = 'fellowship_migrations';
