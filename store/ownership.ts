/**
 * Who owns a namespace's keyspace. Keyspaces have no comment, so the owner is recorded in the rollups table's
 * comment as JSON: Tally's tables, who made them (the operator's CounterNamespace uid; "tally" for
 * `serve --provision`) and whether that owner created the keyspace too. claimOf is the one place that decides what
 * a claimant may do with a keyspace; the runtime, the operator's provisioning and its deletion all ask it.
 */

/** Where an owning CounterNamespace lives: enough to GET it and compare its uid with the recorded owner. */
export interface CounterNamespaceRef {
  namespace: string;
  name: string;
}

export interface Ownership {
  owner: string;
  /** Who the owner is, for people: "CounterNamespace team-a/orders". */
  name?: string;
  /** The owning CounterNamespace (absent for the runtime's own tables). Comments written before this field existed
   * only have `name`; the parser derives it from there. */
  counterNamespace?: CounterNamespaceRef;
  keyspaceCreated: boolean;
}

/** The owner recorded for a rollups table whose comment is not Tally's: made by someone else. */
export const NOT_TALLY = '(not Tally)';

/** The owner `serve --provision` records: tables a runtime made for itself, which the operator may adopt. */
export const RUNTIME_OWNER = 'tally';

export function ownerComment(ownership: Ownership): string {
  return JSON.stringify({ tally: ownership });
}

export function parseOwnerComment(comment: string | null | undefined): Ownership | undefined {
  try {
    const parsed = JSON.parse(comment ?? '') as { tally?: Partial<Ownership> };
    const owner = parsed.tally?.owner;
    if (typeof owner !== 'string') return undefined;
    const name = parsed.tally?.name;
    const ref = parseRef(parsed.tally?.counterNamespace) ?? refFromDisplayName(name);
    return {
      owner,
      ...(typeof name === 'string' ? { name } : {}),
      ...(ref ? { counterNamespace: ref } : {}),
      keyspaceCreated: parsed.tally?.keyspaceCreated === true,
    };
  } catch {
    return undefined;
  }
}

/** The ownership a rollups table's comment records; a comment that is not Tally's records NOT_TALLY. */
export function ownershipOf(comment: string | null | undefined): Ownership {
  return parseOwnerComment(comment) ?? { owner: NOT_TALLY, keyspaceCreated: false };
}

function parseRef(value: unknown): CounterNamespaceRef | undefined {
  const ref = value as Partial<CounterNamespaceRef> | undefined;
  return typeof ref?.namespace === 'string' && typeof ref.name === 'string' && ref.namespace && ref.name
    ? { namespace: ref.namespace, name: ref.name }
    : undefined;
}

/** Older comments: `name: "CounterNamespace <namespace>/<name>"` is all there is. */
function refFromDisplayName(name: unknown): CounterNamespaceRef | undefined {
  const match = typeof name === 'string' ? /^CounterNamespace ([^/\s]+)\/([^/\s]+)$/.exec(name) : null;
  return match ? { namespace: match[1]!, name: match[2]! } : undefined;
}

/**
 * What a claimant may do with a keyspace, given the ownership its rollups table records:
 * - unclaimed: there is no rollups table (yet); whoever creates it owns the keyspace;
 * - ours: the claimant owns it (a claimant of undefined, the runtime, may use any Tally owner's tables);
 * - adoptable: `serve --provision` made it for itself; an operator claimant may record itself as the owner;
 * - taken: it belongs to another owner (`ownership`), or its rollups table is not Tally's (no `ownership`).
 */
export type Claim =
  | { kind: 'unclaimed' }
  | { kind: 'ours'; ownership: Ownership }
  | { kind: 'adoptable'; ownership: Ownership; why: string }
  | { kind: 'taken'; ownership?: Ownership; why: string };

export function claimOf(ownership: Ownership | undefined, claimant: string | undefined, rollupsTable: string): Claim {
  if (!ownership) return { kind: 'unclaimed' };
  if (ownership.owner === NOT_TALLY) return { kind: 'taken', why: `its ${rollupsTable} table was not made by Tally` };
  if (claimant === undefined || ownership.owner === claimant) return { kind: 'ours', ownership };
  const why = `it belongs to ${ownership.name ?? ownership.owner}`;
  if (ownership.owner === RUNTIME_OWNER) return { kind: 'adoptable', ownership, why };
  return { kind: 'taken', ownership, why };
}

/**
 * Where a claimant durably records that it is creating a keyspace (the operator: its CounterNamespace's status).
 * Keyspaces have no comment, so from CREATE KEYSPACE until the rollups table records the owner nothing in Cassandra
 * says who made the keyspace: a crash or a failed CREATE TABLE in between would leave one the claimant created looking
 * like one it found. A keyspace that still holds no table and that the claimant recorded creating is its own, and
 * created by it; one holding tables it did not make is not.
 */
export interface KeyspaceCreationRecord {
  /** Records that the claimant found the keyspace missing and is creating it: called right before CREATE KEYSPACE. */
  creating(): Promise<void>;
  /** Whether creating() was recorded for this keyspace (by an earlier call: the record must outlive a crash). */
  wasCreating(): Promise<boolean>;
}

/**
 * Whether deleting its claimant may drop the keyspace: only when the claimant owns it and created it, so a keyspace
 * a DBA made, or another CounterNamespace, is never dropped. `createdAndEmpty`: the keyspace holds no table and the
 * claimant recorded creating it (KeyspaceCreationRecord), so it stopped before the rollups table was made.
 */
export function mayDrop(claim: Claim, createdAndEmpty = false): { drop: true } | { drop: false; why: string } {
  if (claim.kind === 'unclaimed')
    return createdAndEmpty ? { drop: true } : { drop: false, why: 'it has no Tally tables' };
  if (claim.kind !== 'ours') return { drop: false, why: claim.why };
  if (!claim.ownership.keyspaceCreated) return { drop: false, why: 'this CounterNamespace did not create it' };
  return { drop: true };
}

/**
 * The keyspace is not the caller's to change: it holds tables that are not Tally's, or its rollups table records
 * another owner. Thrown before any ALTER, so nothing of the keyspace was touched.
 */
export class KeyspaceOwnedError extends Error {
  constructor(
    readonly keyspace: string,
    /** Why, for people: "it belongs to CounterNamespace team-a/orders". */
    readonly why: string,
    /** The recorded owner, when there is a Tally rollups table. */
    readonly ownership?: Ownership,
  ) {
    super(`keyspace ${keyspace} is not ours to change: ${why}`);
    this.name = 'KeyspaceOwnedError';
  }
}
