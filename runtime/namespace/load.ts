import * as yaml from 'js-yaml';
import { messageOf } from '../../lib/errors';
import { CONFIG_KIND } from '../../api/namespace-config';
import type { NamespaceConfig } from '../../api/namespace-config';
import { CRD_GROUP, CRD_KIND } from '../../api/names';
import { resolveCounterNamespace, validateNamespaceConfig, type CounterNamespaceManifest } from '../../api/resolve';

/** One namespace read from a document, or why the document was rejected. Only Tally's documents are returned. */
export type LoadedDocument =
  { ok: true; source: string; config: NamespaceConfig; home?: string } | { ok: false; source: string; error: string };

/**
 * Reads every Tally document in a YAML stream: CounterNamespace manifests (resolved with the operator's defaults) and
 * resolved CounterNamespaceConfig documents. Documents of other API groups are skipped, so a folder of manifests can
 * hold a Secret or a Deployment too. A bad document yields an error naming the file, the document and the field; the
 * others are unaffected.
 */
export function loadNamespaceDocuments(text: string, file: string): LoadedDocument[] {
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text, undefined, { filename: file });
  } catch (err) {
    return [{ ok: false, source: file, error: `${file}: not valid YAML: ${messageOf(err)}` }];
  }
  const out: LoadedDocument[] = [];
  docs.forEach((doc, index) => {
    if (doc === null || doc === undefined) return;
    const source = docs.length > 1 ? `${file} (document ${index + 1})` : file;
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      out.push({ ok: false, source, error: `${source}: a document must be a mapping` });
      return;
    }
    const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown };
    if (typeof apiVersion !== 'string' || !apiVersion.startsWith(`${CRD_GROUP}/`)) return;
    try {
      if (kind === CRD_KIND) {
        const manifest = doc as CounterNamespaceManifest & { metadata?: { namespace?: unknown } };
        const home = manifest.metadata?.namespace;
        out.push({
          ok: true,
          source,
          config: resolveCounterNamespace(manifest),
          ...(typeof home === 'string' && home !== '' ? { home } : {}),
        });
      } else if (kind === CONFIG_KIND) {
        out.push({ ok: true, source, config: validateNamespaceConfig(doc) });
      } else {
        out.push({
          ok: false,
          source,
          error: `${source}: kind ${JSON.stringify(kind)} is not ${CRD_KIND} or ${CONFIG_KIND}`,
        });
      }
    } catch (err) {
      const name =
        (doc as { metadata?: { name?: unknown }; name?: unknown }).metadata?.name ?? (doc as { name?: unknown }).name;
      const label = typeof name === 'string' ? ` (${name})` : '';
      out.push({ ok: false, source, error: `${source}${label}: ${messageOf(err)}` });
    }
  });
  return out;
}
