import type { ApplicationConfig } from '@nestjs/core';

/** The app's global prefix as a path: `""` or `"/api"` (Fellowship's routes are mounted under it). */
export function globalPrefixPath(config: ApplicationConfig): string {
  const prefix = config.getGlobalPrefix().replace(/^\/+|\/+$/g, '');
  return prefix ? `/${prefix}` : '';
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
