import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** One cross-session memory entry (CONTRACT §9); a memory store is the set of entries with one `memory_id`. */
@Entity({ name: 'fellowship_memory_entries' })
export class MemoryEntryEntity {
  @PrimaryGeneratedColumn({ type: 'integer' })
  id!: number;

  @Index('IDX_fellowship_memory_entries_memory_id')
  @Column({ name: 'memory_id', type: 'varchar', length: 36 })
  memoryId!: string;

  /** The public id of the session that wrote it; null for a v1 entry whose writer is no longer held. */
  @Column({ type: 'varchar', length: 36, nullable: true })
  session!: string | null;

  @Column({ type: 'text' })
  content!: string;

  @Column({ type: 'varchar', length: 30 })
  ts!: string;
}
