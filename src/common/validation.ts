import { ValidationPipe, type ValidationError } from '@nestjs/common';
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

function flatten(errors: ValidationError[], parent = ''): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  for (const error of errors) {
    const isIndex = /^\d+$/.test(error.property);
    const field = parent ? (isIndex ? `${parent}[${error.property}]` : `${parent}.${error.property}`) : error.property;
    for (const message of Object.values(error.constraints ?? {})) {
      // class-validator says "name must be …"; say the full path instead.
      const text = message.startsWith(`${error.property} `) ? `${field}${message.slice(error.property.length)}` : `${field}: ${message}`;
      out.push({ field, message: text });
    }
    out.push(...flatten(error.children ?? [], field));
  }
  return out;
}

/**
 * Our controllers' validation: no implicit type conversion ("5" is not a number), unknown fields
 * kept (they are reported in `ignored_options`, not refused), errors as 400 VALIDATION_ERROR
 * naming the field (`bots[0].name …`).
 */
export function fellowshipValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    whitelist: false,
    forbidNonWhitelisted: false,
    forbidUnknownValues: false,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    exceptionFactory: validationError,
  });
}

function validationError(errors: ValidationError[]): FellowshipError {
  const details = flatten(errors);
  const first = details[0];
  return FellowshipError.validation(first ? `Invalid request: ${first.message}.` : 'Invalid request.', details);
}

/** Validates a plain body against a DTO class where a pipe cannot run first (access checks come first). */
export function validateBody<T extends object>(cls: new () => T, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw FellowshipError.validation('Invalid request: the body must be a JSON object.');
  }
  const instance = plainToInstance(cls, body, { enableImplicitConversion: false });
  const errors = validateSync(instance, { forbidUnknownValues: false, validationError: { target: false, value: false } });
  if (errors.length > 0) {
    throw validationError(errors);
  }
  return instance;
}

/** Property names a DTO class declares (from its validation decorators). */
export function knownProperties(cls: abstract new () => object): Set<string> {
  const metadata = getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false);
  return new Set(metadata.map((m) => m.propertyName));
}
