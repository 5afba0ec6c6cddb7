import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { FellowshipMetrics } from '../../metrics/fellowship-metrics.service.js';

/**
 * Counts each request on Fellowship's routes once it is answered (or its connection closes: an SSE
 * stream counts when it ends), labelled with the route's pattern as Express matched it
 * (`/v1/session/:token/stream`, global prefix included) — never the path, which holds a token.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: FellowshipMetrics) {}

  use(req: Request, res: Response, next: NextFunction): void {
    res.once('close', () => this.metrics.httpRequest(req.method, routePattern(req), res.statusCode));
    next();
  }
}

/** The matched route's pattern; `unmatched` when no route handled the request. */
export function routePattern(req: Request): string {
  // Express types `req.route` as any.
  const route: unknown = req.route;
  const path = typeof route === 'object' && route !== null ? (route as { path?: unknown }).path : undefined;
  return typeof path === 'string' ? path : 'unmatched';
}
