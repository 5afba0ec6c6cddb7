import type { Provider } from '@nestjs/common';
import { fellowshipLogger } from './common/fellowship-logger.js';
import type { FellowshipOptions, ResolvedFellowshipOptions } from './config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from './config/fellowship-options.token.js';
import { Cluster, CLUSTER } from './cluster/cluster.js';
import { EVENT_BUS, type EventBus } from './events/event-bus.port.js';
import { InProcessEventBus } from './events/in-process-event-bus.js';
import { LocalLoopLease } from './loop/local-loop-lease.js';
import { LOOP_LEASE, type LoopLease } from './loop/loop-lease.port.js';
import { SESSION_STORE, type SessionStore } from './persistence/session-store.port.js';
import { TypeOrmSessionStore } from './persistence/typeorm-session.store.js';

/**
 * The ports a host may supply through FellowshipModule's options (each optional, with our default).
 * They are objects, not settings, so they sit beside FellowshipOptions rather than in it; with
 * `forRootAsync` the factory can build them from the host's own providers.
 */
export interface FellowshipPorts {
  /**
   * Where sessions, history, retained events and memory entries are kept. Default: TypeORM on
   * SQLite (`databasePath`), PostgreSQL (`databaseUrl`), or the host's `dataSource` (either). Fellowship calls its lifecycle hooks
   * (`onModuleInit`, `onApplicationShutdown`) as its own provider's.
   */
  sessionStore?: SessionStore;
  /**
   * Event fan-out: how a session's committed events reach the members of every instance. Default:
   * in process (`InProcessEventBus`).
   */
  eventBus?: EventBus;
  /**
   * Loop ownership: which instance runs each session's loop, with the epoch its writes carry as a
   * fence. Default: this instance runs them all (`LocalLoopLease`).
   */
  loopLease?: LoopLease;
}

/** What `forRoot` / `forRootAsync` take: the options, and the ports. */
export type FellowshipModuleOptions = FellowshipOptions & FellowshipPorts;

/** The options without the ports (what `FELLOWSHIP_OPTIONS` resolves). */
export function withoutPorts(options: FellowshipModuleOptions): FellowshipOptions {
  const { sessionStore: _store, eventBus: _bus, loopLease: _lease, ...rest } = options;
  return rest;
}

/**
 * The providers of the ports, each the host's when given, else our default; with `redisUrl`, the
 * defaults of the event bus and the loop lease are the Redis ones of this instance's Cluster.
 */
export function portProviders(moduleOptions: symbol | string): Provider[] {
  return [
    {
      provide: CLUSTER,
      useFactory: (given: FellowshipModuleOptions | undefined, options: ResolvedFellowshipOptions): Cluster | null => {
        if (!options.redisUrl) {
          return null;
        }
        if (given?.eventBus || given?.loopLease) {
          throw new Error('FellowshipModule: with redisUrl, Fellowship runs its own Redis event bus and loop lease; leave the eventBus and loopLease options out.');
        }
        const logger = fellowshipLogger(options, 'Cluster');
        return new Cluster(options, (error) => logger.error(`redis: ${error instanceof Error ? error.message : String(error)}`));
      },
      inject: [moduleOptions, FELLOWSHIP_OPTIONS],
    },
    {
      provide: SESSION_STORE,
      useFactory: (given: FellowshipModuleOptions | undefined, options: ResolvedFellowshipOptions): SessionStore =>
        given?.sessionStore ?? new TypeOrmSessionStore(options),
      inject: [moduleOptions, FELLOWSHIP_OPTIONS],
    },
    {
      provide: EVENT_BUS,
      useFactory: (given: FellowshipModuleOptions | undefined, options: ResolvedFellowshipOptions, cluster: Cluster | null): EventBus =>
        given?.eventBus ??
        cluster?.bus ??
        new InProcessEventBus((error) => fellowshipLogger(options, 'EventBus').error(`delivering events failed: ${String(error)}`)),
      inject: [moduleOptions, FELLOWSHIP_OPTIONS, CLUSTER],
    },
    {
      provide: LOOP_LEASE,
      useFactory: (given: FellowshipModuleOptions | undefined, cluster: Cluster | null): LoopLease => given?.loopLease ?? cluster?.lease ?? new LocalLoopLease(),
      inject: [moduleOptions, CLUSTER],
    },
  ];
}

/** The tokens of the ports, exported by FellowshipModule. */
export const PORT_TOKENS = [SESSION_STORE, EVENT_BUS, LOOP_LEASE, CLUSTER];
