import { registerDecorator, type ValidationArguments, type ValidationOptions } from 'class-validator';
import { kindOf } from './validation.js';

/**
 * The one rule for names that people and bots read (bot names, talker names over WebSocket and
 * REST). A name is what bots see before a colon (`Name: text`) and what members see beside every
 * message, so it must be visible and unambiguous:
 *
 * - no control characters (Cc: NUL, tabs, line breaks…), no format characters (Cf: bidi overrides
 *   and isolates, zero-width spaces and joiners, soft hyphens, tags…), no unpaired surrogates, no
 *   line or paragraph separators (U+2028, U+2029), no `:`;
 * - not empty, and not blank once whitespace, default-ignorable characters, combining marks and
 *   blank-looking symbols are taken away (a name of Hangul fillers is no name);
 * - at most `max` characters, counted in code points (an emoji is one character, as a person counts).
 *
 * `nameProblem` is the rule; `@IsDisplayName` applies it in DTOs; both give the same sentence.
 */

/** Characters a name may never hold, reported by their code point. */
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}:]/u;
/** What does not show: whitespace, default-ignorables, combining marks alone, the braille blank. */
const INVISIBLE = /[\p{White_Space}\p{Default_Ignorable_Code_Point}\p{M}\u2800]/gu;

/** Length in code points (what a person counts), without allocating: UTF-16 units minus pairs. */
export function codePointLength(text: string): number {
  let pairs = 0;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        pairs++;
        i++;
      }
    }
  }
  return text.length - pairs;
}

function describe(char: string): string {
  const code = `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
  if (char === ':') {
    return '":"';
  }
  if (char === '\n' || char === '\r') {
    return `line breaks (${code})`;
  }
  if (/\p{Cc}/u.test(char)) {
    return `control characters (${code})`;
  }
  if (/\p{Cf}/u.test(char)) {
    return `invisible formatting characters such as bidi or zero-width ones (${code})`;
  }
  if (/\p{Cs}/u.test(char)) {
    return `unpaired surrogates (${code})`;
  }
  return `line or paragraph separators (${code})`;
}

/** What is wrong with a name, as the end of a sentence after the field ("must not be empty"), or null. */
export function nameProblem(value: unknown, max: number): string | null {
  if (typeof value !== 'string') {
    return `must be a string, not ${kindOf(value)}`;
  }
  if (value.trim().length === 0) {
    return 'must not be empty';
  }
  if (codePointLength(value) > max) {
    return `must be at most ${max} characters long`;
  }
  const forbidden = FORBIDDEN.exec(value);
  if (forbidden) {
    return `must not contain ${describe(forbidden[0])}`;
  }
  if (value.replace(INVISIBLE, '').length === 0) {
    return 'must contain at least one visible character';
  }
  return null;
}

/**
 * The identity of a name for comparisons (bot names are unique, a talker may not take a bot's
 * name, defaults skip names in use, rate limits are per name): trimmed, NFKC (full-width and
 * compatibility forms fold to their plain letters), lower case.
 */
export function nameKey(name: string): string {
  return name.trim().normalize('NFKC').toLowerCase();
}

/** Class-validator form of {@link nameProblem}: `<field> must not be empty`, etc. */
export function IsDisplayName(max: number, options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol): void => {
    registerDecorator({
      name: 'isDisplayName',
      target: target.constructor,
      propertyName: String(propertyName),
      constraints: [max],
      options,
      validator: {
        validate: (value: unknown): boolean => nameProblem(value, max) === null,
        defaultMessage: (args?: ValidationArguments): string => `${args?.property ?? 'name'} ${nameProblem(args?.value, max) ?? 'is invalid'}`,
      },
    });
  };
}
