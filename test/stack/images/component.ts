import * as fs from 'node:fs';
import type { Component, Endpoint, Probe } from '../component';
import { ensureImages, imageSpecs, imagesDir, planImages, type BuiltImage } from './images';

/** TALLY_IMAGE_RUNTIME, TALLY_IMAGE_OPERATOR, TALLY_IMAGE_MEMCACHED (references) and each one's _TAR (the archive). */
export function imageEnv(built: BuiltImage[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const b of built) {
    const key = `TALLY_IMAGE_${b.name.replace(/^tally-/, '').toUpperCase()}`;
    env[key] = b.ref;
    env[`${key}_TAR`] = b.tar;
  }
  return env;
}

/**
 * The images of the local cluster (images.ts): "installing" builds what is missing, once per change of their inputs;
 * "starting" names them in the env. No process runs. A change of a Dockerfile or of the product sources changes the
 * fingerprint, so the next `up` or test run rebuilds them.
 */
export const images: Component = {
  name: 'images',
  phase: 0,
  externalVars: [],
  processes: [],

  fromEnvironment: () => undefined,

  async install() {
    await ensureImages();
  },

  async start(): Promise<Endpoint> {
    const built = await ensureImages();
    return { address: imagesDir(), env: imageEnv(built) };
  },

  fingerprint(): string {
    return planImages(imageSpecs())
      .filter((p) => p.tar)
      .map((p) => p.ref)
      .join(' ');
  },

  probe(endpoint): Promise<Probe> {
    const tars = Object.entries(endpoint.env).filter(([k]) => k.endsWith('_TAR'));
    const missing = tars.filter(([, file]) => !fs.existsSync(file)).map(([, file]) => file);
    return Promise.resolve(
      missing.length === 0 && tars.length > 0
        ? { ok: true, version: `${tars.length} image archives` }
        : { ok: false, detail: `missing ${missing.join(', ') || 'every archive'}` },
    );
  },
};
