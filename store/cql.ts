import { CQL_IDENTIFIER_PATTERN, DATACENTER_PATTERN } from '../api/spec-schema';

const identifier = new RegExp(CQL_IDENTIFIER_PATTERN);
const datacenter = new RegExp(DATACENTER_PATTERN);

/**
 * CQL cannot bind identifiers or DDL options, so the few places that must put a name into a statement go through
 * these checks: a strict pattern for identifiers and datacenter names, and integers for numbers. Values always go
 * through bind markers.
 */
export function ident(name: string): string {
  if (!identifier.test(name))
    throw new Error(`refusing CQL identifier ${JSON.stringify(name)}: must match ${CQL_IDENTIFIER_PATTERN}`);
  return name;
}

export function qualified(keyspace: string, table: string): string {
  return `${ident(keyspace)}.${ident(table)}`;
}

export function int(value: number, what: string): string {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new Error(`refusing ${what} ${value}: must be a non-negative integer`);
  return String(value);
}

export function datacenterLiteral(name: string): string {
  if (!datacenter.test(name))
    throw new Error(`refusing datacenter name ${JSON.stringify(name)}: must match ${DATACENTER_PATTERN}`);
  return `'${name}'`;
}

/** A string literal for a comment; single quotes doubled, control characters refused. */
export function stringLiteral(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(value)) throw new Error('refusing a CQL string literal with control characters');
  return `'${value.replace(/'/g, "''")}'`;
}
