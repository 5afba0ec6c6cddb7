import { Logger, type LoggerService } from '@nestjs/common';

/** Swallows everything: `logger: false`. */
const SILENT: LoggerService = {
  log: () => undefined,
  error: () => undefined,
  warn: () => undefined,
  debug: () => undefined,
  verbose: () => undefined,
  fatal: () => undefined,
};

/**
 * A Nest `Logger` bound to Fellowship's `logger` option instead of the application-wide logger:
 * `undefined` = Nest's application logger (what `new Logger(context)` does), `false` = silent, a
 * `LoggerService` = that service, with the context appended as Nest does. It is a drop-in for
 * `new Logger(context)`, and never touches `Logger.overrideLogger`, which belongs to the host.
 */
export class FellowshipLogger extends Logger {
  constructor(
    context: string,
    private readonly target: LoggerService | false | undefined,
  ) {
    super(context);
  }

  override get localInstance(): LoggerService {
    if (this.target === false) {
      return SILENT;
    }
    return this.target ?? super.localInstance;
  }
}

/** `new Logger(context)` for Fellowship's own classes, honouring the `logger` option. */
export function fellowshipLogger(options: { logger?: LoggerService | false }, context: string): Logger {
  return new FellowshipLogger(context, options.logger);
}
