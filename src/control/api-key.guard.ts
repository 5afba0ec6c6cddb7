import { CanActivate, createParamDecorator, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ErrorCode } from '../common/error-code.enum.js';
import { FellowshipError } from '../common/fellowship.error.js';
import type { ResolvedFellowshipOptions } from '../config/fellowship-options.interface.js';
import { FELLOWSHIP_OPTIONS } from '../config/fellowship-options.token.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Who called a keyed route (CONTRACT §2, §14). */
export interface ApiCaller {
  /** SHA-256 (hex) of the bearer key given; null on an open server (no keys configured). */
  keyHash: string | null;
  /** Sees every session in the sessions index: an `ADMIN_API_KEYS` key, or anyone on an open server. */
  admin: boolean;
}

const OPEN: ApiCaller = { keyHash: null, admin: true };
const callers = new WeakMap<Request, ApiCaller>();

/**
 * `API_KEYS` / `ADMIN_API_KEYS` bearer auth for session creation and the sessions index (CONTRACT
 * §2, §14); open when no key of either kind is configured. It leaves the caller on the request for
 * {@link Caller}.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: Buffer[];
  private readonly adminKeys: Buffer[];

  constructor(@Inject(FELLOWSHIP_OPTIONS) options: ResolvedFellowshipOptions) {
    this.keys = options.apiKeys.filter((k) => k.length > 0).map(digest);
    this.adminKeys = options.adminApiKeys.filter((k) => k.length > 0).map(digest);
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request>();
    if (this.keys.length === 0 && this.adminKeys.length === 0) {
      callers.set(request, OPEN);
      return true;
    }
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    if (match) {
      const given = digest(match[1].trim());
      const user = matchesAny(given, this.keys);
      const admin = matchesAny(given, this.adminKeys);
      if (user || admin) {
        callers.set(request, { keyHash: given.toString('hex'), admin });
        return true;
      }
    }
    throw new FellowshipError(ErrorCode.UNAUTHORIZED, 'A valid "Authorization: Bearer <key>" header is required.');
  }
}

/** Compares against every key (no early exit), in constant time per key. */
function matchesAny(given: Buffer, keys: readonly Buffer[]): boolean {
  let ok = false;
  for (const key of keys) {
    ok = timingSafeEqual(given, key) || ok;
  }
  return ok;
}

/** The caller that {@link ApiKeyGuard} let through (a route with this parameter must use the guard). */
export const Caller = createParamDecorator((_data: unknown, context: ExecutionContext): ApiCaller => {
  const caller = callers.get(context.switchToHttp().getRequest<Request>());
  if (!caller) {
    // Failing closed: a route that reads the caller without the guard is a wiring fault.
    throw new Error('@Caller() used on a route without ApiKeyGuard');
  }
  return caller;
});
