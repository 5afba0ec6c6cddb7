import { Injectable, type ArgumentMetadata, type PipeTransform, type ValidationError } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validateSync } from 'class-validator';
import { FellowshipError } from './fellowship.error.js';

/** "a string", "null", "an array", …: how messages name the type of a value that was sent. */
export function kindOf(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'an array';
  }
  return KINDS[typeof value] ?? typeof value;
}

const KINDS: Partial<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  boolean: 'a boolean',
  object: 'an object',
  undefined: 'nothing',
};

/** One refused field: its dotted path (`bots[0].max_tokens`) and a sentence about the value sent. */
export interface FieldProblem {
  field: string;
  message: string;
}

/**
 * The constraint that explains a field's failure best, first: presence, then the type (a string
 * "5" fails `isInt` and `min` alike, and "must be an integer" is the useful answer), then emptiness,
 * then ranges and lengths, then patterns. Constraints not listed (custom ones) come last.
 */
const PRIORITY = [
  'isArray',
  'isObject',
  'nestedValidation',
  'isBoolean',
  'isString',
  'isInt',
  'isNumber',
  'isIn',
  'isNotEmpty',
  'arrayMinSize',
  'arrayMaxSize',
  'min',
  'max',
  'minLength',
  'maxLength',
];

/** What a type constraint asks for, as the object of "must be …". */
const EXPECTED: Record<string, string> = {
  isArray: 'an array',
  isObject: 'an object',
  nestedValidation: 'an object',
  isBoolean: 'true or false',
  isString: 'a string',
  isInt: 'an integer',
  isNumber: 'a number',
};

const QUOTE_LIMIT = 40;

function quote(text: string): string {
  return JSON.stringify(text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}…` : text);
}

/** `field must be an integer, not a string` and the like, with a hint for a quoted number or boolean. */
function typeMessage(field: string, constraint: string, value: unknown): string {
  if (constraint === 'isInt' && typeof value === 'number') {
    return `${field} must be an integer, not ${value}.`;
  }
  let hint = '';
  if (typeof value === 'string') {
    const looksLikeNumber = value.trim() !== '' && Number.isFinite(Number(value));
    if ((constraint === 'isInt' || constraint === 'isNumber') && looksLikeNumber) {
      hint = `: write ${value.trim()} without quotes`;
    } else if (constraint === 'isBoolean' && (value === 'true' || value === 'false')) {
      hint = `: write ${value} without quotes`;
    }
  }
  return `${field} must be ${EXPECTED[constraint]}, not ${kindOf(value)}${hint}.`;
}

function limit(constraints: unknown[] | undefined): unknown {
  return constraints?.[0];
}

/** The sentence for one failed constraint of `field`, whose value was `value`. */
function sentence(field: string, property: string, constraint: string, value: unknown, fallback: string, args: unknown[] | undefined): string {
  if (constraint in EXPECTED) {
    return typeMessage(field, constraint, value);
  }
  switch (constraint) {
    case 'isIn': {
      const allowed = (args?.[0] as unknown[] | undefined)?.map((a) => JSON.stringify(a)).join(', ') ?? '';
      return `${field} must be one of ${allowed}, not ${typeof value === 'string' ? quote(value) : kindOf(value)}.`;
    }
    case 'isNotEmpty':
      return `${field} must not be empty.`;
    case 'arrayMinSize':
      return limit(args) === 1 ? `${field} must not be empty.` : `${field} must have at least ${String(limit(args))} items.`;
    case 'arrayMaxSize':
      return `${field} must have at most ${String(limit(args))} items.`;
    case 'min':
      return `${field} must be at least ${String(limit(args))}, not ${String(value)}.`;
    case 'max':
      return `${field} must be at most ${String(limit(args))}, not ${String(value)}.`;
    case 'minLength':
      return `${field} must be at least ${String(limit(args))} characters long.`;
    case 'maxLength':
      return `${field} must be at most ${String(limit(args))} characters long.`;
    default:
      // A constraint with its own message (a pattern, a custom rule): say it with the full path.
      return fallback.startsWith(`${property} `) ? `${field}${fallback.slice(property.length)}.` : `${field}: ${fallback}.`;
  }
}

/** The constraint arguments class-validator used for `property` of the object that failed. */
function constraintArgs(target: object | undefined, property: string, constraint: string): unknown[] | undefined {
  if (!target) {
    return undefined;
  }
  const metadata = getMetadataStorage().getTargetValidationMetadatas(target.constructor, '', true, false);
  return metadata.find((m) => m.propertyName === property && (m.name === constraint || m.type === constraint))?.constraints as unknown[] | undefined;
}

/** The elements of an array that should hold objects (`bots[1]`) and do not. */
function notObjectElements(field: string, value: unknown[]): FieldProblem[] {
  return value.flatMap((element, i) =>
    typeof element !== 'object' || element === null || Array.isArray(element) ? [{ field: `${field}[${i}]`, message: typeMessage(`${field}[${i}]`, 'isObject', element) }] : [],
  );
}

function problemsOf(error: ValidationError, field: string): FieldProblem[] {
  const constraints = error.constraints ?? {};
  const names = Object.keys(constraints);
  if (names.length === 0) {
    return [];
  }
  const value: unknown = error.value;
  if (value === undefined) {
    return [{ field, message: `${field} is required.` }];
  }
  const rank = (name: string): number => {
    const i = PRIORITY.indexOf(name);
    return i === -1 ? PRIORITY.length : i;
  };
  const constraint = [...names].sort((a, b) => rank(a) - rank(b))[0];
  // `@IsObject({ each: true })` fails on the array as a whole: name the elements instead.
  if (constraint === 'isObject' && Array.isArray(value)) {
    const elements = notObjectElements(field, value);
    if (elements.length > 0) {
      return elements;
    }
  }
  const args = constraintArgs(error.target, error.property, constraint);
  return [{ field, message: sentence(field, error.property, constraint, value, constraints[constraint], args) }];
}

/** One problem per field (the most telling), depth first, in declaration order. */
export function fieldProblems(errors: ValidationError[], parent = ''): FieldProblem[] {
  const out: FieldProblem[] = [];
  const seen = new Set<string>();
  const walk = (list: ValidationError[], path: string): void => {
    for (const error of list) {
      const isIndex = /^\d+$/.test(error.property);
      const field = path ? (isIndex ? `${path}[${error.property}]` : `${path}.${error.property}`) : error.property;
      for (const problem of problemsOf(error, field)) {
        if (!seen.has(problem.field)) {
          seen.add(problem.field);
          out.push(problem);
        }
      }
      // A field already refused (for its type, say) has no meaningful children.
      if (!seen.has(field)) {
        walk(error.children ?? [], field);
      }
    }
  };
  walk(errors, parent);
  return out;
}

function validationError(errors: ValidationError[]): FellowshipError {
  const details = fieldProblems(errors);
  const [first] = details;
  if (!first) {
    return FellowshipError.validation('The request body is not valid.');
  }
  const more = details.length - 1;
  return FellowshipError.validation(more > 0 ? `${first.message} ${more} more in details.` : first.message, details);
}

/**
 * Validates a parsed JSON body against a DTO class: no implicit type conversion ("5" is not a
 * number), unknown fields kept (they are reported in `ignored_options`, not refused), errors as
 * 400 VALIDATION_ERROR naming the field (`bots[0].name …`) with one sentence per field.
 * The body's nesting was bounded before (`request-body.ts`): class-transformer recurses.
 */
export function validateBody<T extends object>(cls: new () => T, body: unknown): T {
  if (body === undefined) {
    throw FellowshipError.validation('The request body is missing: send a JSON object as "application/json".');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw FellowshipError.validation(`The request body must be a JSON object, not ${kindOf(body)}.`);
  }
  const instance = plainToInstance(cls, body, { enableImplicitConversion: false });
  // The value is kept on each error so the message can say what was sent; it never leaves this file.
  const errors = validateSync(instance, { forbidUnknownValues: false, validationError: { target: true, value: true } });
  if (errors.length > 0) {
    throw validationError(errors);
  }
  return instance;
}

/** Our controllers' body validation ({@link validateBody}); other parameters pass through. */
@Injectable()
export class FellowshipValidationPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    const cls = metadata.metatype as (new () => object) | undefined;
    if (metadata.type !== 'body' || !cls || knownProperties(cls).size === 0) {
      return value;
    }
    return validateBody(cls, value);
  }
}

/** Property names a DTO class declares (from its validation decorators). */
export function knownProperties(cls: abstract new () => object): Set<string> {
  const metadata = getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false);
  return new Set(metadata.map((m) => m.propertyName));
}
