import type { LoggerService } from '@nestjs/common';
import { WinstonModule, utilities } from 'nest-winston';
import * as winston from 'winston';
import DailyRotateFile from 'winston-daily-rotate-file';
import { redact, SECRET_KEYS } from './redact.js';

export { redact } from './redact.js';

const redactFormat = winston.format((info, opts: unknown) => {
  const secrets = (opts as { secrets?: string[] } | undefined)?.secrets ?? [];
  for (const key of Object.keys(info)) {
    info[key] = SECRET_KEYS.test(key) ? '[redacted]' : redact(info[key], secrets);
  }
  return info;
});

/**
 * nest-winston puts `stack: [trace]` on every error line, and Nest's `Logger.error(message)` passes
 * no trace, so lines would carry a junk `"stack":[null]`. Drop it when it holds nothing.
 */
export const dropEmptyStack = winston.format((info) => {
  const { stack } = info as { stack?: unknown };
  if (Array.isArray(stack) && stack.every((s) => s === undefined || s === null)) {
    delete info.stack;
  }
  return info;
});

export interface LoggingConfig {
  logDir: string;
  level: string;
  production: boolean;
  /** Values never to print (the server key, API keys). */
  secrets: string[];
  /** Console output (off in tests). */
  console: boolean;
}

/**
 * Winston for the standalone server: JSON lines to `<logDir>/YYYY-MM-DD.log`, rotated daily and
 * always on; console too (readable in development, JSON in production).
 */
export function createLogger(config: LoggingConfig): LoggerService {
  const transports: winston.transport[] = [
    new DailyRotateFile({
      dirname: config.logDir,
      filename: '%DATE%.log',
      datePattern: 'YYYY-MM-DD',
      level: config.level,
      format: winston.format.combine(dropEmptyStack(), redactFormat({ secrets: config.secrets }), winston.format.timestamp(), winston.format.json()),
    }),
  ];
  if (config.console) {
    transports.push(
      new winston.transports.Console({
        level: config.level,
        format: config.production
          ? winston.format.combine(dropEmptyStack(), redactFormat({ secrets: config.secrets }), winston.format.timestamp(), winston.format.json())
          : winston.format.combine(
              dropEmptyStack(),
              redactFormat({ secrets: config.secrets }),
              winston.format.timestamp(),
              utilities.format.nestLike('Fellowship', { colors: process.stdout.isTTY, prettyPrint: true }),
            ),
      }),
    );
  }
  return WinstonModule.createLogger({ level: config.level, transports });
}
