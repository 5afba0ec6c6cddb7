import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** `API_KEYS` bearer auth for session creation (CONTRACT §2); open when no key is configured. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: Buffer[];

  constructor(@Inject(FELLOWSHIP_OPTIONS) options: ResolvedFellowshipOptions) {
    this.keys = options.apiKeys.filter((k) => k.length > 0).map(digest);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.keys.length === 0) {
      return true;
    }
    const header = context.switchToHttp().getRequest<Request>().headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (match) {
      const given = digest(match[1].trim());
      // Compare against every key (no early exit) in constant time per key.
      let ok = false;
      for (const key of this.keys) {
        ok = timingSafeEqual(given, key) || ok;
      }
      if (ok) {
        return true;
      }
    }
    throw new FellowshipError(ErrorCode.UNAUTHORIZED, 'A valid "Authorization: Bearer <key>" header is required.');
  }
}
