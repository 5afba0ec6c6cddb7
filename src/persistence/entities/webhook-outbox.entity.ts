import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { SessionEntity } from './session.entity.js';

/**
 * One session event still to be POSTed to the session's webhook (CONTRACT §14): written in the
 * same transaction as the event, deleted when delivered or dropped. Delivered in `seq` order.
 */
@Entity({ name: 'fellowship_webhook_outbox' })
export class WebhookOutboxEntity {
  @PrimaryColumn({ name: 'session_id', type: 'varchar', length: 36 })
  sessionId!: string;

  @PrimaryColumn({ type: 'integer' })
  seq!: number;

  @ManyToOne(() => SessionEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'FK_fellowship_webhook_outbox_session' })
  session?: SessionEntity;

  @Column({ type: 'varchar', length: 32 })
  type!: string;

  /** The event exactly as members received it. */
  @Column({ type: 'text' })
  json!: string;

  /** Delivery attempts made so far. */
  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  /** Not before this time (ms epoch): the backoff of the last failed attempt. */
  @Column({ name: 'next_attempt_at', type: 'bigint', default: 0 })
  nextAttemptAt!: number;
}
