import type { NamespaceConfig } from '../../api/namespace-config';

export interface IdempotencyToken {
  token: string;
  /** Milliseconds since the epoch. */
  generationTimeMs: number;
}

export interface AddRequest {
  counter: string;
  delta: number;
  token: IdempotencyToken;
}

export interface ClearRequest {
  counter: string;
  token: IdempotencyToken;
}

export interface CountReply {
  count: number;
  /** The instant the count is exact for (rollup time for Eventual reads, now for Accurate, absent for BestEffort). */
  asOfMs?: number;
}

/** What each counter type implements; the service picks one by the namespace's counterType. */
export interface CounterOps {
  readonly config: NamespaceConfig;
  add(req: AddRequest): Promise<void>;
  addAndGet(req: AddRequest): Promise<CountReply>;
  get(counter: string): Promise<CountReply>;
  clear(req: ClearRequest): Promise<CountReply>;
  /** Stops background work (rollup queues, after running the rollups that are due). */
  close(): Promise<void>;
}
