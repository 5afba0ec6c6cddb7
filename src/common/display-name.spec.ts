import { describe, expect, it } from '@jest/globals';
import { Type } from 'class-transformer';
import { IsOptional, ValidateNested } from 'class-validator';
import { codePointLength, IsDisplayName, nameKey, nameProblem } from './display-name.js';
import { FellowshipError } from './fellowship.error.js';
import { validateBody } from './validation.js';

const MAX = 64;

describe(nameProblem.name, () => {
  it.each([
    ['plain', 'Alice'],
    ['with a digit and a hyphen', 'Ann-Marie 2'],
    ['an apostrophe', "O'Brien"],
    ['precomposed accent', 'Jos\u00e9'],
    ['decomposed accent (a letter with its combining mark)', 'Jose\u0301'],
    ['CJK', '\u674e\u5c0f\u9f8d'],
    ['right-to-left letters (no override)', '\u0645\u062d\u0645\u062f'],
    ['an emoji', '\u{1F642}'],
    ['spaces around (trimmed where stored)', '  Alice  '],
    ['exactly the limit in ASCII', 'a'.repeat(MAX)],
    ['exactly the limit in astral code points (128 UTF-16 units)', '\u{1F600}'.repeat(MAX)],
  ])('accepts %s', (_case, name) => {
    expect(nameProblem(name, MAX)).toBeNull();
  });

  it.each([
    ['an empty string', '', 'must not be empty'],
    ['spaces only', '   ', 'must not be empty'],
    ['a tab only', '\t', 'must not be empty'],
    ['a line separator only', '\u2028', 'must not be empty'],
    ['a byte-order mark only', '\ufeff', 'must not be empty'],
    ['a number', 5, 'must be a string'],
    ['null', null, 'must be a string'],
    ['one character over', 'a'.repeat(MAX + 1), `must be at most ${MAX} characters long`],
    ['one code point over (astral)', '\u{1F600}'.repeat(MAX + 1), `must be at most ${MAX} characters long`],
    ['a zero-width space only', '\u200b', 'must not contain invisible formatting characters such as bidi or zero-width ones (U+200B)'],
    ['zero-width joiners around a name', '\u200dBob\u200c', 'U+200D'],
    ['a word joiner', 'Bo\u2060b', 'U+2060'],
    ['a soft hyphen', 'Bo\u00adb', 'U+00AD'],
    ['a right-to-left override', 'Bob\u202etxt.exe', 'U+202E'],
    ['a left-to-right embedding', '\u202aBob', 'U+202A'],
    ['bidi isolates', '\u2066Bob\u2069', 'U+2066'],
    ['a Mongolian vowel separator', 'Bob\u180e', 'U+180E'],
    ['a tag character', 'Bob\u{E0041}', 'U+E0041'],
    ['a tab inside', 'A\tB', 'must not contain control characters (U+0009)'],
    ['NUL', 'A\u0000B', 'must not contain control characters (U+0000)'],
    ['a C1 control (NEL)', 'A\u0085B', 'must not contain control characters (U+0085)'],
    ['DEL', 'A\u007fB', 'U+007F'],
    ['a line feed', 'A\nB', 'must not contain line breaks (U+000A)'],
    ['a carriage return', 'A\rB', 'must not contain line breaks (U+000D)'],
    ['a line separator inside', 'A\u2028B', 'must not contain line or paragraph separators (U+2028)'],
    ['a paragraph separator inside', 'A\u2029B', 'must not contain line or paragraph separators (U+2029)'],
    ['an unpaired surrogate', 'A\ud800B', 'must not contain unpaired surrogates (U+D800)'],
    ['a colon', 'Alice: hi', 'must not contain ":"'],
    ['a Hangul filler only', '\u3164', 'must contain at least one visible character'],
    ['Hangul fillers and spaces', '\u3164 \u3164', 'must contain at least one visible character'],
    ['a half-width Hangul filler', '\uffa0', 'must contain at least one visible character'],
    ['the braille blank', '\u2800\u2800', 'must contain at least one visible character'],
    ['a combining mark alone', '\u0301', 'must contain at least one visible character'],
    ['a variation selector alone', '\ufe0f', 'must contain at least one visible character'],
    ['a combining grapheme joiner alone', '\u034f', 'must contain at least one visible character'],
    ['ideographic spaces', '\u3000\u3000', 'must not be empty'],
  ])('refuses %s', (_case, name, message) => {
    expect(nameProblem(name, MAX)).toContain(message);
  });
});

describe(codePointLength.name, () => {
  it('counts code points, not UTF-16 units', () => {
    expect(codePointLength('')).toBe(0);
    expect(codePointLength('abc')).toBe(3);
    expect(codePointLength('\u{1F600}')).toBe(1);
    expect(codePointLength('a\u{1F600}b')).toBe(3);
    expect(codePointLength('e\u0301')).toBe(2);
    // Unpaired surrogates count one each, in either order.
    expect(codePointLength('\ud800')).toBe(1);
    expect(codePointLength('\udc00\ud800')).toBe(2);
    expect(codePointLength('x'.repeat(8000))).toBe([...'x'.repeat(8000)].length);
  });
});

describe(nameKey.name, () => {
  it('folds case, surrounding spaces and compatibility forms, so look-alike duplicates collide', () => {
    expect(new Set(['Alice', ' alice ', 'ALICE', '\uff21\uff4c\uff49\uff43\uff45'].map(nameKey))).toEqual(new Set(['alice']));
    expect(nameKey('Jos\u00e9')).toBe(nameKey('Jose\u0301'));
    expect(nameKey('Talker 1')).not.toBe(nameKey('Talker 2'));
  });
});

class Named {
  @IsDisplayName(MAX)
  name!: string;
}

class Crew {
  @ValidateNested({ each: true })
  @Type(() => Named)
  members!: Named[];

  @IsOptional()
  @IsDisplayName(MAX)
  nickname?: string;
}

function validationMessage(body: unknown, cls: new () => object): string {
  try {
    validateBody(cls, body);
  } catch (error) {
    expect(error).toBeInstanceOf(FellowshipError);
    return (error as FellowshipError).message;
  }
  throw new Error('expected a validation error');
}

describe(IsDisplayName.name, () => {
  it('gives the same sentence as the plain function, naming the field (nested paths included)', () => {
    expect(validationMessage({ name: '' }, Named)).toBe('name must not be empty.');
    expect(validationMessage({ name: 'a:b' }, Named)).toBe('name must not contain ":".');
    expect(validationMessage({ members: [{ name: 'ok' }, { name: '\u3164' }] }, Crew)).toBe(
      'members[1].name must contain at least one visible character.',
    );
    expect(validationMessage({ members: [], nickname: 'Bob\u202e' }, Crew)).toContain('nickname must not contain invisible formatting');
  });

  it('passes valid names and leaves optional ones alone', () => {
    expect(validateBody(Named, { name: 'Alice' }).name).toBe('Alice');
    expect(validateBody(Crew, { members: [{ name: 'Zo\u00eb' }] }).nickname).toBeUndefined();
  });
});
