import { describe, expect, it, jest } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { FellowshipLogger, fellowshipLogger } from './fellowship-logger.js';

function recorder(): LoggerService & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  const record = (level: string) => (...args: unknown[]) => void calls.push([level, ...args]);
  return { calls, log: record('log'), error: record('error'), warn: record('warn'), debug: record('debug'), verbose: record('verbose') };
}

describe(FellowshipLogger.name, () => {
  it('sends lines to the given logger with the context last, as Nest does', () => {
    const target = recorder();
    const sut = fellowshipLogger({ logger: target }, 'Ops');
    sut.log('ready');
    sut.warn('slow', { ms: 3 });
    sut.error('failed');
    expect(target.calls).toEqual([
      ['log', 'ready', 'Ops'],
      ['warn', 'slow', { ms: 3 }, 'Ops'],
      ['error', 'failed', undefined, 'Ops'],
    ]);
  });

  it('is silent with logger: false', () => {
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const sut = fellowshipLogger({ logger: false }, 'Ops');
      sut.log('nothing');
      sut.error('nothing either');
      expect(out).not.toHaveBeenCalled();
      expect(err).not.toHaveBeenCalled();
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
});
