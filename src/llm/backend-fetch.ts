import { Injectable } from '@nestjs/common';

/**
 * The fetch the SDK uses toward backends. Redirects are never followed (a 3xx could point a
 * request, with its key, anywhere): a redirect answer becomes an error.
 */
@Injectable()
export class BackendFetch {
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, { ...init, redirect: 'manual' });
    return response;
  };
}
