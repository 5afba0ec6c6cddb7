import { EventEntity } from './event.entity.js';
import { MemoryEntryEntity } from './memory-entry.entity.js';
import { MessageEntity } from './message.entity.js';
import { MetaEntity } from './meta.entity.js';
import { SessionEntity } from './session.entity.js';
import { WebhookOutboxEntity } from './webhook-outbox.entity.js';

export { EventEntity, MemoryEntryEntity, MessageEntity, MetaEntity, SessionEntity, WebhookOutboxEntity };

/** Every Fellowship table, for a DataSource's `entities`. */
export const FELLOWSHIP_ENTITIES = [SessionEntity, MessageEntity, EventEntity, MemoryEntryEntity, MetaEntity, WebhookOutboxEntity];
