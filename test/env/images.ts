/**
 * The project's container image, built from the Dockerfile for the e2e suite (hack/build-image.sh does the
 * work): a Debian bookworm minbase base with Node.js 20.20.2, cached outside the repository keyed by versions,
 * and the project image on top, rebuilt on every run because it is the code under test. The result is an OCI
 * archive the real node imports (test/env/real-node.ts importImage); pods use it with imagePullPolicy Never.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, runBuildScript } from './binaries.js';
import { installDebianPackages } from './debian.js';

/** The image name the archive carries (its org.opencontainers.image.ref.name), as pods must spell it. */
export const PROJECT_IMAGE = 'localhost/nxt-rollback-operator:e2e';

/** Debian packages the image build needs; .ci/run installs them up front, buildProjectImage what is missing. */
export const IMAGE_PACKAGES = ['podman', 'buildah', 'runc', 'debootstrap'];

export interface ProjectImage {
  /** PROJECT_IMAGE */
  image: string;
  /** Path of the OCI archive (`podman save --format oci-archive`). */
  archive: string;
  /** Seconds the build took, base included when it was not cached. */
  seconds: number;
}

function missingImagePackages(): string[] {
  const has = (paths: string[]) => paths.some((p) => existsSync(p));
  return IMAGE_PACKAGES.filter((p) => !has([`/usr/bin/${p}`, `/usr/sbin/${p}`]));
}

/**
 * Builds the project image into `archive` (default: under the harness cache, overwritten per run). Installs
 * podman, buildah, runc and debootstrap from Debian's packages when they are missing and we are root.
 */
export async function buildProjectImage(
  opts: { archive?: string; log?: (m: string) => void } = {},
): Promise<ProjectImage> {
  const log = opts.log ?? (() => {});
  const missing = missingImagePackages();
  if (missing.length) installDebianPackages(missing, log);
  const t0 = Date.now();
  const script = join(REPO_ROOT, 'hack', 'build-image.sh');
  const archive = await runBuildScript(script, '[build-image] ', 'image: ', log, 'the project image', {
    args: opts.archive ? [opts.archive] : [],
    env: { IMAGE: PROJECT_IMAGE },
  });
  return { image: PROJECT_IMAGE, archive, seconds: Math.round((Date.now() - t0) / 1000) };
}
