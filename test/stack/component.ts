/**
 * One service of the local stack (Cassandra, Memcached, Kubernetes, helm, and Tally's own processes). Each can be
 * replaced by an existing service through environment variables, in which case the stack never starts or stops it.
 */
export interface Component {
  readonly name: string;
  /**
   * 0: stores and control plane, started in parallel; 1: the operator, and the node and cluster DNS when enabled; 2:
   * the runtime. Each phase waits for the last.
   */
  readonly phase: 0 | 1 | 2;
  /** Environment variables naming an existing service; when any is set the component is external. */
  readonly externalVars: string[];
  /** The existing service named by those variables, or undefined when none is set. */
  fromEnvironment(env: NodeJS.ProcessEnv): Endpoint | undefined;
  /** Installs or builds what start() needs, once, into the cache. Idempotent; prints progress. */
  install(): Promise<void>;
  /**
   * Starts the service's processes and waits for real readiness; returns what clients need to reach it. `env` holds
   * what the earlier phases' components wrote (CASSANDRA_CONTACT_POINTS, ...). `previous` is the endpoint of an earlier
   * start that is gone: its ports are taken again where they are free (ports.ts portOr).
   */
  start(env: Record<string, string>, previous?: Endpoint): Promise<Endpoint>;
  /** Changes when what the service runs changes (e.g. a rebuilt dist/): a running one with another is restarted. */
  fingerprint?(): string;
  /** Asks the service itself whether it answers, and which version it is. */
  probe(endpoint: Endpoint): Promise<Probe>;
  /** Names of the processes start() records, stopped in reverse order by `down`. */
  readonly processes: string[];
  /**
   * Stops the processes and undoes what start() changed on the machine (network, mounts); true when any process was
   * still running. Without it the stack stops `processes`, last started first. Also called before a start and after a
   * failed one, so it must cope with nothing (or anything) being left.
   */
  stop?(): Promise<boolean>;
}

export interface Endpoint {
  /** Shown by `status`: host:port or URL. */
  address: string;
  /** Written to .tally/env. */
  env: Record<string, string>;
  fingerprint?: string;
  /** The ports the service listens on, by role, so a restart can take the same ones. */
  ports?: Record<string, number>;
}

export interface Probe {
  ok: boolean;
  version?: string;
  detail?: string;
}
