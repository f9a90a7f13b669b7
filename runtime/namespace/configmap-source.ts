import { CoreV1Api, Watch, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CONFIG_KEY, CONFIG_LABEL_VALUE, CRD_GROUP, CRD_KIND, LABELS } from '../../api/names';
import { messageOf } from '../../lib/errors';
import { ResourceInformer } from '../../lib/kube/resource-informer';
import { loadNamespaceDocuments } from './load';
import { dedupeByName, type NamespaceSnapshot, type NamespaceSource } from './source';
import type { NamespaceConfig } from '../../api/namespace-config';

/** Changes arriving together (a relist, several CounterNamespaces applied at once) make one snapshot. */
const DEBOUNCE_MS = 50;

/**
 * Namespaces from the ConfigMaps the operator writes (label tally.dev/config=namespace), watched through the
 * Kubernetes API: read-only access to ConfigMaps is all the runtime needs, never the CounterNamespace resource itself.
 * A namespace appears moments after its CounterNamespace is reconciled and disappears when it is deleted.
 */
export class ConfigMapNamespaceSource implements NamespaceSource {
  private readonly configMaps: ResourceInformer<V1ConfigMap>;
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
    this.configMaps.on('add', emit);
    this.configMaps.on('update', emit);
    this.configMaps.on('delete', emit);
    this.configMaps.on('error', (err) =>
      this.log.warn({ err: messageOf(err) }, 'watching namespace ConfigMaps failed; retrying'),
    );
    this.configMaps.start();
    await this.configMaps.waitForSync();
    onChange(this.snapshot());
  }

  /**
   * Every ConfigMap's document, oldest first (then by namespace/name), the first definition of a name winning: a
   * CounterNamespace of the same name made later in another Kubernetes namespace cannot take over one that is served.
   * Only ConfigMaps a CounterNamespace controls (the operator's) count; a hand-made one with the label is reported.
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
    const loaded: { source: string; config: NamespaceConfig }[] = [];
    const errors: string[] = [];
    for (const cm of maps) {
      const source = `ConfigMap ${cm.metadata?.namespace}/${cm.metadata?.name}`;
      const controlled = (cm.metadata?.ownerReferences ?? []).some(
        (o) => o.controller === true && o.kind === CRD_KIND && o.apiVersion.startsWith(`${CRD_GROUP}/`),
      );
      if (!controlled) {
        errors.push(`${source}: not controlled by a CounterNamespace (only the operator's ConfigMaps are served)`);
        continue;
      }
      const text = cm.data?.[CONFIG_KEY];
      if (text === undefined) {
        errors.push(`${source}: has no ${CONFIG_KEY} key`);
        continue;
      }
      for (const doc of loadNamespaceDocuments(text, source)) {
        if (doc.ok) loaded.push(doc);
        else errors.push(doc.error);
      }
    }
    const deduped = dedupeByName(loaded);
    return { namespaces: deduped.namespaces, errors: [...errors, ...deduped.errors] };
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.configMaps.stop();
  }
}
