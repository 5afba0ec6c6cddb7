import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { SessionEntity } from './session.entity.js';

/** One history message (CONTRACT §5), keyed by session and turn; only §13's edit and delete change a row. */
@Entity({ name: 'fellowship_messages' })
export class MessageEntity {
  @PrimaryColumn({ name: 'session_id', type: 'varchar', length: 36 })
  sessionId!: string;

  @PrimaryColumn({ type: 'integer' })
  turn!: number;

  @ManyToOne(() => SessionEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id' })
  session?: SessionEntity;

  @Column({ type: 'varchar', length: 8 })
  kind!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text', nullable: true })
  bot!: string | null;

  @Column({ name: 'talker_id', type: 'varchar', length: 64, nullable: true })
  talkerId!: string | null;

  @Column({ type: 'text' })
  content!: string;

  @Column({ type: 'varchar', length: 30 })
  ts!: string;

  @Column({ type: 'integer', nullable: true })
  tokens!: number | null;

  @Column({ type: 'text', nullable: true })
  reasoning!: string | null;

  /** When the content was last edited (CONTRACT §13), or null. */
  @Column({ name: 'edited_at', type: 'varchar', length: 30, nullable: true })
  editedAt!: string | null;

  /** Deleted (CONTRACT §13): the row stays with empty content. */
  @Column({ type: 'boolean', default: false })
  deleted!: boolean;
}
