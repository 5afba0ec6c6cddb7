import type { Provider } from '@nestjs/common';
import { fellowshipLogger } from './common/fellowship-logger.js';
import type { FellowshipOptions, ResolvedFellowshipOptions } from './config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from './config/fellowship-options.token.js';
import { EVENT_BUS, type EventBus } from './events/event-bus.port.js';
import { InProcessEventBus } from './events/in-process-event-bus.js';

/**
 * The ports a host may supply through FellowshipModule's options (each optional, with our default).
 * They are objects, not settings, so they sit beside FellowshipOptions rather than in it; with
 * `forRootAsync` the factory can build them from the host's own providers.
 */
export interface FellowshipPorts {
  /**
   * Event fan-out: how a session's committed events reach the members of every instance. Default:
   * in process (`InProcessEventBus`).
   */
  eventBus?: EventBus;
}

/** What `forRoot` / `forRootAsync` take: the options, and the ports. */
export type FellowshipModuleOptions = FellowshipOptions & FellowshipPorts;

const PORT_KEYS: readonly (keyof FellowshipPorts)[] = ['eventBus'];

/** The options without the ports (what `FELLOWSHIP_OPTIONS` resolves). */
export function withoutPorts(options: FellowshipModuleOptions): FellowshipOptions {
  const rest: Record<string, unknown> = { ...options };
  for (const key of PORT_KEYS) {
    delete rest[key];
  }
  return rest;
}

/** The providers of the ports, each the host's when given, else our default. */
export function portProviders(moduleOptions: symbol | string): Provider[] {
  return [
    {
      provide: EVENT_BUS,
      useFactory: (given: FellowshipModuleOptions | undefined, options: ResolvedFellowshipOptions): EventBus =>
        given?.eventBus ?? new InProcessEventBus((error) => fellowshipLogger(options, 'EventBus').error(`delivering events failed: ${String(error)}`)),
      inject: [moduleOptions, FELLOWSHIP_OPTIONS],
    },
  ];
}

/** The tokens of the ports, exported by FellowshipModule. */
export const PORT_TOKENS = [EVENT_BUS];
