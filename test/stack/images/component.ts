import { imageSpecs, planImages, type BuiltImage } from './images';

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
 * The references of the images the cluster runs, as they would be built now: changes with a Dockerfile or the product
 * sources (their content hash), so a component that runs them can tell that it must be upgraded.
 */
export function clusterImageRefs(): string {
  return planImages(imageSpecs())
    .filter((p) => p.tar)
    .map((p) => p.ref)
    .join(' ');
}
