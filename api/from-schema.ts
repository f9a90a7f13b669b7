/**
 * The TypeScript type a JSON Schema (written `as const`) describes, as the API server stores it: a property with a
 * `default` is always present after defaulting, so it is required here, like the properties listed in `required`.
 *
 * Covers the subset our schemas use: type string/integer/number/boolean/array/object, enum, properties, required,
 * default and map-like objects (`additionalProperties` with a schema and no `properties`). Other keywords (bounds,
 * patterns, descriptions, x-kubernetes-*) do not change the type and are ignored.
 */
export type FromSchema<S> = S extends { enum: readonly (infer E)[] }
  ? E
  : S extends { type: 'string' }
    ? string
    : S extends { type: 'integer' | 'number' }
      ? number
      : S extends { type: 'boolean' }
        ? boolean
        : S extends { type: 'array'; items: infer I }
          ? FromSchema<I>[]
          : S extends { type: 'object'; properties: infer P }
            ? ObjectFromSchema<P, PresentKeys<S, P>>
            : S extends { type: 'object'; additionalProperties: infer A }
              ? Record<string, FromSchema<A>>
              : unknown;

/** Keys that are always there: listed in `required`, or defaulted. */
type PresentKeys<S, P> =
  | (S extends { required: readonly (infer R)[] } ? R : never)
  | { [K in keyof P]: P[K] extends { default: unknown } ? K : never }[keyof P];

type ObjectFromSchema<P, Present> = Flatten<
  { -readonly [K in keyof P as K extends Present ? K : never]: FromSchema<P[K]> } & {
    -readonly [K in keyof P as K extends Present ? never : K]?: FromSchema<P[K]>;
  }
>;

/** One object type instead of an intersection, so the result reads (and compares) like a hand-written interface. */
type Flatten<T> = { [K in keyof T]: T[K] };

/** True when A and B are the same type (not merely assignable to each other). */
export type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
