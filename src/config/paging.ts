/** The contract's bounds on a page (CONTRACT §14): a `limit` over them is a 400, never clamped. */
export const SESSIONS_PAGE_MAX = 200;
export const HISTORY_PAGE_MAX = 1000;
