import { CoreV1Api, CustomObjectsApi, Watch, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  CONFIG_KEY,
  CONFIG_LABEL_VALUE,
  CRD_GROUP,
  CRD_KIND,
  CRD_PLURAL,
  CRD_VERSION,
  LABELS,
  configMapName,
} from '../../api/names';
import type { CounterNamespace } from '../../api/types';
import { messageOf } from '../../lib/errors';
import { customObjectLister } from '../../lib/kube/custom-objects';
import { ResourceInformer } from '../../lib/kube/resource-informer';
import { loadNamespaceDocuments } from './load';
import { dedupeByName, type LoadedNamespace, type NamespaceSnapshot, type NamespaceSource } from './source';
import type { NamespaceConfig } from '../../api/namespace-config';

/** Changes arriving together (a relist, several CounterNamespaces applied at once) make one snapshot. */
const DEBOUNCE_MS = 50;

/**
 * Namespaces from the ConfigMaps the operator writes (label tally.dev/config=namespace), watched through the
 * Kubernetes API with the CounterNamespaces that vouch for them: read access to both is all the runtime needs. A
 * namespace appears moments after its CounterNamespace is reconciled and disappears when it is deleted.
 */
export class ConfigMapNamespaceSource implements NamespaceSource {
  private readonly configMaps: ResourceInformer<V1ConfigMap>;
  private readonly counterNamespaces: ResourceInformer<CounterNamespace & { metadata: object }>;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    kc: KubeConfig,
    /** Kubernetes namespaces to watch; empty means all. */
    private readonly watchNamespaces: string[],
    private readonly log: Logger,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    const watch = new Watch(kc);
    this.configMaps = new ResourceInformer<V1ConfigMap>({
      resource: { version: 'v1', plural: 'configmaps' },
      namespaces: watchNamespaces,
      list: (namespace, r) =>
        namespace
          ? core.listNamespacedConfigMap({ namespace, labelSelector: r.labelSelector }, r.options)
          : core.listConfigMapForAllNamespaces({ labelSelector: r.labelSelector }, r.options),
      watch,
      labelSelector: `${LABELS.config}=${CONFIG_LABEL_VALUE}`,
      name: 'namespace ConfigMaps',
      logger: log,
    });
    const crd = { group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL };
    this.counterNamespaces = new ResourceInformer({
      resource: crd,
      namespaces: watchNamespaces,
      list: customObjectLister(kc.makeApiClient(CustomObjectsApi), crd),
      watch,
      name: 'CounterNamespaces',
      logger: log,
    });
  }

  get description(): string {
    const where = this.watchNamespaces.length > 0 ? `namespaces ${this.watchNamespaces.join(', ')}` : 'all namespaces';
    return `ConfigMaps labelled ${LABELS.config}=${CONFIG_LABEL_VALUE} in ${where}`;
  }

  async start(onChange: (snapshot: NamespaceSnapshot) => void): Promise<void> {
    const emit = (): void => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => onChange(this.snapshot()), DEBOUNCE_MS);
    };
    for (const [informer, what] of [
      [this.configMaps, 'namespace ConfigMaps'],
      [this.counterNamespaces, 'CounterNamespaces'],
    ] as const) {
      informer.on('add', emit);
      informer.on('update', emit);
      informer.on('delete', emit);
      informer.on('error', (err) => this.log.warn({ err: messageOf(err) }, `watching ${what} failed; retrying`));
      informer.start();
    }
    await Promise.all([this.configMaps.waitForSync(), this.counterNamespaces.waitForSync()]);
    onChange(this.snapshot());
  }

  /**
   * Every ConfigMap's document, oldest first (then by namespace/name), the first definition of a name winning: a
   * CounterNamespace of the same name made later in another Kubernetes namespace cannot take over one that is served.
   * Only ConfigMaps their CounterNamespace vouches for count (controllerOf, vouchedFor); any other labelled one is
   * reported.
   */
  snapshot(): NamespaceSnapshot {
    const created = (cm: V1ConfigMap): number => new Date(cm.metadata?.creationTimestamp ?? 0).getTime();
    const maps = this.configMaps
      .list()
      .sort(
        (a, b) =>
          created(a) - created(b) ||
          `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace}/${b.metadata?.name}`),
      );
    const loaded: LoadedNamespace[] = [];
    const errors: string[] = [];
    for (const cm of maps) {
      const source = `ConfigMap ${cm.metadata?.namespace}/${cm.metadata?.name}`;
      const owner = controllerOf(cm, (namespace, name) => this.counterNamespaces.get(namespace, name));
      if (!owner.ok) {
        errors.push(`${source}: ${owner.why}`);
        continue;
      }
      const text = cm.data?.[CONFIG_KEY];
      if (text === undefined) {
        errors.push(`${source}: has no ${CONFIG_KEY} key`);
        continue;
      }
      for (const doc of loadNamespaceDocuments(text, source)) {
        if (!doc.ok) {
          errors.push(doc.error);
          continue;
        }
        const vouched = vouchedFor(doc.config, owner.counterNamespace);
        // Callers are authorized where the CounterNamespace lives, whatever the document says.
        if (vouched.kind === 'served') loaded.push({ ...doc, home: cm.metadata!.namespace! });
        else if (vouched.kind === 'refused') errors.push(`${source}: ${vouched.why}`);
        // Pending: reconciled moments ago, its status follows.
      }
    }
    const deduped = dedupeByName(loaded);
    return { ...deduped, errors: [...errors, ...deduped.errors] };
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await Promise.all([this.configMaps.stop(), this.counterNamespaces.stop()]);
  }
}

/**
 * The CounterNamespace that controls a ConfigMap, if it exists with the uid the owner reference names: anyone who may
 * create ConfigMaps can write an owner reference, so the reference alone proves nothing. The ConfigMap must also be
 * the one the operator names for that CounterNamespace.
 */
export function controllerOf(
  cm: V1ConfigMap,
  get: (namespace: string, name: string) => CounterNamespace | undefined,
): { ok: true; counterNamespace: CounterNamespace } | { ok: false; why: string } {
  const ref = (cm.metadata?.ownerReferences ?? []).find(
    (o) => o.controller === true && o.kind === CRD_KIND && o.apiVersion.startsWith(`${CRD_GROUP}/`),
  );
  if (!ref)
    return { ok: false, why: "not controlled by a CounterNamespace (only the operator's ConfigMaps are served)" };
  const namespace = cm.metadata?.namespace ?? '';
  const cns = get(namespace, ref.name);
  if (!cns || cns.metadata.uid !== ref.uid) {
    return {
      ok: false,
      why: `its controller, CounterNamespace ${namespace}/${ref.name} with uid ${ref.uid}, does not exist: not served`,
    };
  }
  const expected = configMapName(ref.name);
  if (cm.metadata?.name !== expected) {
    return {
      ok: false,
      why: `CounterNamespace ${namespace}/${ref.name} keeps its configuration in ConfigMap ${expected}, not this one: not served`,
    };
  }
  return { ok: true, counterNamespace: cns };
}

export type Vouched = { kind: 'served' } | { kind: 'pending' } | { kind: 'refused'; why: string };

/**
 * Whether a document in a vouched-for ConfigMap is what its CounterNamespace was provisioned as: its name, and the
 * keyspace the operator recorded in the status (which only the operator writes), so an edited ConfigMap cannot point
 * the runtime at another tenant's keyspace before the operator puts it back. Pending until the status names one.
 */
export function vouchedFor(config: NamespaceConfig, cns: CounterNamespace): Vouched {
  const where = `CounterNamespace ${cns.metadata.namespace}/${cns.metadata.name}`;
  if (config.name !== cns.metadata.name)
    return { kind: 'refused', why: `defines namespace "${config.name}", which is not ${where}: not served` };
  const keyspace = cns.status?.keyspace;
  if (!keyspace) return { kind: 'pending' };
  if (config.cassandra.keyspace !== keyspace) {
    return {
      kind: 'refused',
      why: `names keyspace ${config.cassandra.keyspace}, but the operator provisioned ${keyspace} for ${where}: not served`,
    };
  }
  return { kind: 'served' };
}
