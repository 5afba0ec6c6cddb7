import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { SessionEntity } from './session.entity.js';

/** One history message (CONTRACT §5); append-only, keyed by session and turn. */
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
}
