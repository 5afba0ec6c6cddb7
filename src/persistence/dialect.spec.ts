import { describe, expect, it } from '@jest/globals';
import type { DataSource } from 'typeorm';
import { dialectOf, numberPlaceholders } from './dialect.js';

const source = (type: string): Pick<DataSource, 'options'> => ({ options: { type } as DataSource['options'] });

describe('SQL dialects', () => {
  it('numbers `?` placeholders for PostgreSQL, leaving quoted strings and identifiers alone', () => {
    expect(numberPlaceholders('SELECT "a?" FROM "t" WHERE "x" = ? AND "y" IN (?, ?) AND "z" = \'what?\'')).toBe(
      'SELECT "a?" FROM "t" WHERE "x" = $1 AND "y" IN ($2, $3) AND "z" = \'what?\'',
    );
    expect(numberPlaceholders("SELECT 'it''s ?', ?::bigint")).toBe("SELECT 'it''s ?', $1::bigint");
  });

  it('tells SQLite from PostgreSQL, and knows no other database', () => {
    expect(dialectOf(source('sqlite'))?.greatest('"a"', '?')).toBe('MAX("a", ?)');
    expect(dialectOf(source('better-sqlite3'))?.name).toBe('sqlite');
    expect(dialectOf(source('postgres'))?.greatest('"a"', '?')).toBe('GREATEST("a", ?)');
    expect(dialectOf(source('postgres'))?.valuesParam(1)).toBe('?::bigint');
    expect(dialectOf(source('postgres'))?.valuesParam(null)).toBe('?::text');
    expect(dialectOf(source('sqlite'))?.valuesParam(1)).toBe('?');
    expect(dialectOf(source('mysql'))).toBeNull();
  });
});
