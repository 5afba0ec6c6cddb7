import { randomUUID } from 'node:crypto';
import { nameKey } from '../common/display-name.js';
import type { BotConfig, MemberRole } from '../model/session.types.js';

/** Who joined, as the session names them. */
export interface MemberIdentity {
  role: MemberRole;
  talkerId: string | null;
  name: string | null;
}

/**
 * The members connected to one session: how many of each role, and the names talkers use, so that
 * default names never repeat one in use (`Talker <n>` in join order, `API`, `API 2`…).
 */
export class Roster {
  talkers = 0;
  observers = 0;
  /** Talkers ever joined, for default names. */
  private talkerSerial = 0;
  /** Names of the connected talkers (name key -> connections). */
  private readonly talkerNames = new Map<string, number>();

  constructor(
    /** The session's bots: their names are never given to a talker by default. */
    private readonly bots: readonly BotConfig[],
  ) {}

  get size(): number {
    return this.talkers + this.observers;
  }

  /** Counts a member in: a talker gets an id, and `Talker <n>` unless it gave a name. */
  add(role: MemberRole, name: string | null): MemberIdentity {
    const member: MemberIdentity = { role, talkerId: null, name };
    if (role === 'talker') {
      this.talkers++;
      this.talkerSerial++;
      member.talkerId = randomUUID();
      member.name ??= this.freeName('Talker', this.talkerSerial);
      this.countName(member.name, 1);
    } else {
      this.observers++;
    }
    return member;
  }

  /** Counts in again a member another instance had counted (its identity kept, CONTRACT §15). */
  restore(member: MemberIdentity): void {
    if (member.role === 'talker') {
      this.talkers++;
      this.talkerSerial++;
      this.countName(member.name ?? '', 1);
    } else {
      this.observers++;
    }
  }

  remove(member: MemberIdentity): void {
    if (member.role === 'talker') {
      this.talkers--;
      this.countName(member.name ?? '', -1);
    } else {
      this.observers--;
    }
  }

  /**
   * A default name no bot and no connected talker has: `base` (or `base from` when `from` is given),
   * else the next number up: `API`, `API 2`, `API 3`…; `Talker 3`, `Talker 4`…
   */
  freeName(base: string, from?: number): string {
    for (let n = from ?? 1; ; n++) {
      const name = from === undefined && n === 1 ? base : `${base} ${n}`;
      const key = nameKey(name);
      if (!this.talkerNames.has(key) && !this.bots.some((b) => nameKey(b.name) === key)) {
        return name;
      }
    }
  }

  hasTalkerName(name: string): boolean {
    return this.talkerNames.has(nameKey(name));
  }

  private countName(name: string, delta: 1 | -1): void {
    const key = nameKey(name);
    const count = (this.talkerNames.get(key) ?? 0) + delta;
    if (count > 0) {
      this.talkerNames.set(key, count);
    } else {
      this.talkerNames.delete(key);
    }
  }
}
