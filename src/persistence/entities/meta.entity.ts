import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Small key/value facts about the database itself (e.g. the last start-up, which doubles as a write probe). */
@Entity({ name: 'fellowship_meta' })
export class MetaEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  key!: string;

  @Column({ type: 'text' })
  value!: string;
}
