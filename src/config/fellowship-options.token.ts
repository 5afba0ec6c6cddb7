/** Injection token of the resolved FellowshipOptions (defaults filled in). */
export const FELLOWSHIP_OPTIONS = Symbol('FELLOWSHIP_OPTIONS');
