import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One session, as needed to rebuild it after a restart. Tokens only as SHA-256 hashes; the
 * session's own LLM key only as `SecretBox` ciphertext. JSON columns hold the config, the status
 * fields, usage and the loop state (they change together, with every event batch).
 */
@Entity({ name: 'fellowship_sessions' })
// The sessions index (CONTRACT §14) pages newest first, over all sessions or one API key's.
@Index('IDX_fellowship_sessions_created', ['createdAt', 'id'])
@Index('IDX_fellowship_sessions_owner_created', ['ownerKeyHash', 'createdAt', 'id'])
export class SessionEntity {
  /** The public session id (`ses_…`, CONTRACT §2); v1 rows got one when the schema was upgraded. */
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Index('IDX_fellowship_sessions_control_hash', { unique: true })
  @Column({ name: 'control_hash', type: 'varchar', length: 64 })
  controlHash!: string;

  @Index('IDX_fellowship_sessions_observer_hash', { unique: true })
  @Column({ name: 'observer_hash', type: 'varchar', length: 64 })
  observerHash!: string;


  /** SessionConfig as JSON (no secrets). */
  @Column({ type: 'text' })
  config!: string;

  @Column({ name: 'api_key_cipher', type: 'text', nullable: true })
  apiKeyCipher!: string | null;

  @Column({ name: 'created_at', type: 'varchar', length: 30 })
  createdAt!: string;

  /** ISO-8601; ISO strings of one format sort like the instants they name. */
  @Index('IDX_fellowship_sessions_ended_at')
  @Column({ name: 'ended_at', type: 'varchar', length: 30, nullable: true })
  endedAt!: string | null;

  /** end_reason, end_detail, pause_reason, bot_turns as JSON. */
  @Column({ type: 'text' })
  status!: string;

  @Column({ type: 'text' })
  usage!: string;

  @Column({ name: 'loop_state', type: 'text' })
  loopState!: string;

  @Index('IDX_fellowship_sessions_memory_id')
  @Column({ name: 'memory_id', type: 'varchar', length: 36, nullable: true })
  memoryId!: string | null;

  /** `written` | `failed` | null (a summary is still owed if the session ended with memory). */
  @Column({ name: 'memory_state', type: 'varchar', length: 16, nullable: true })
  memoryState!: string | null;

  /** Highest event seq ever committed (events may have been pruned since). */
  @Column({ name: 'last_seq', type: 'integer', default: 0 })
  lastSeq!: number;

  /** Highest seq of a retained event deleted by the retention sweep. */
  @Column({ name: 'dropped_through', type: 'integer', default: 0 })
  droppedThrough!: number;

  /**
   * The v1 row key (a UUID) of a session created before public ids, kept only where its API key
   * ciphertext is bound to it (`SecretBox` associated data); null everywhere else.
   */
  @Column({ name: 'legacy_id', type: 'varchar', length: 36, nullable: true })
  legacyId!: string | null;

  /**
   * The newest loop lease epoch a holder has claimed for this session (SessionStore.raiseFence): a
   * commit fenced with an older epoch is refused in its own transaction. 0 = never claimed.
   */
  @Column({ name: 'lease_epoch', type: 'integer', default: 0 })
  leaseEpoch!: number;

  /** SHA-256 (hex) of the API key that created the session; null when created without one (and for v1 rows). */
  @Column({ name: 'owner_key_hash', type: 'varchar', length: 64, nullable: true })
  ownerKeyHash!: string | null;

  /** The webhook's signing secret as `SecretBox` ciphertext (bound to `<id>#webhook`); null = none. */
  @Column({ name: 'webhook_secret_cipher', type: 'text', nullable: true })
  webhookSecretCipher!: string | null;
}
