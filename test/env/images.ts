/**
 * The project's container image, built from the Dockerfile for the e2e suite (hack/build-image.sh does the
 * work): a Debian bookworm minbase base with Node.js 20.20.2, cached outside the repository keyed by versions,
 * and the project image on top, rebuilt on every run because it is the code under test. The result is an OCI
 * archive the real node imports (test/env/real-node.ts importImage); pods use it with imagePullPolicy Never.
 * The image's tag is the first 12 hex digits of its image ID (so two runs at once never share a name), and the
 * tests compare a container's image by ID and manifest digest, not only by name.
 * The archive (~180 MB) is written to a harness work dir of this run (`nxt-env-image-*` with owner.pid), not
 * to the cache: it is removed by `removeArchive()` (once imported), at the latest when this process exits, and
 * by a later run's reapStaleRuns (test/env/processes.ts) when this one was killed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, runBuildScript } from './binaries.js';
import { installDebianPackages } from './debian.js';
import { WORKDIR_PREFIX } from './processes.js';

/** Repository of the project image; its tag is per build (see the header). */
export const PROJECT_IMAGE_REPOSITORY = 'localhost/nxt-rollback-operator';

/** Debian packages the image build needs; .ci/run installs them up front, buildProjectImage what is missing. */
export const IMAGE_PACKAGES = ['podman', 'buildah', 'runc', 'debootstrap'];

export interface ProjectImage {
  /** The name the archive carries (its org.opencontainers.image.ref.name), as pods must spell it. */
  image: string;
  /** Image ID: the digest of its config (`sha256:...`), what `podman images` and CRI report as the image. */
  id: string;
  /** Digest of its manifest (`sha256:...`), what the node's image store (`ctr images ls`) names as target. */
  digest: string;
  /** Path of the OCI archive (`podman save --format oci-archive`). */
  archive: string;
  /** Seconds the build took, base included when it was not cached. */
  seconds: number;
  /**
   * Deletes the archive (and its work dir) now, e.g. once the node has imported it; idempotent. Without an
   * explicit `archive` option it also runs when this process exits.
   */
  removeArchive(): void;
}

function missingImagePackages(): string[] {
  const has = (paths: string[]) => paths.some((p) => existsSync(p));
  return IMAGE_PACKAGES.filter((p) => !has([`/usr/bin/${p}`, `/usr/sbin/${p}`]));
}

/**
 * A harness work dir for the archive: `owner.pid` makes a later run's reapStaleRuns remove it when this
 * process was killed; `remove` (also run at this process's exit) removes it otherwise.
 */
export function imageWorkDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `${WORKDIR_PREFIX}image-`));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const remove = () => {
    process.off('exit', remove);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', remove); // synchronous, so it also runs when something calls process.exit()
  return { dir, remove };
}

/**
 * Builds the project image into `archive` (default: `project.oci.tar` in a harness work dir of this run, see
 * the header). Installs podman, buildah, runc and debootstrap from Debian's packages when they are missing
 * and we are root.
 */
export async function buildProjectImage(
  opts: { archive?: string; log?: (m: string) => void } = {},
): Promise<ProjectImage> {
  const log = opts.log ?? (() => {});
  const missing = missingImagePackages();
  if (missing.length) installDebianPackages(missing, log);
  const t0 = Date.now();
  const script = join(REPO_ROOT, 'hack', 'build-image.sh');
  const work = opts.archive ? undefined : imageWorkDir();
  const removeArchive = work?.remove ?? (() => rmSync(opts.archive!, { force: true }));
  try {
    const archive = await runBuildScript(script, '[build-image] ', 'image: ', log, 'the project image', {
      args: [opts.archive ?? join(work!.dir, 'project.oci.tar')],
      dieWithParent: true,
      // every network step of the script has its own limit (hack/build-image.sh SLOW_STEP_SECONDS...); this
      // one also bounds the wait for another run's build (the store's lock): a stuck build fails the set-up
      timeoutMs: Number(process.env.NXT_BUILD_IMAGE_TIMEOUT_MS) || 60 * 60_000,
    });
    return {
      ...readOciArchive(archive),
      archive,
      seconds: Math.round((Date.now() - t0) / 1000),
      removeArchive,
    };
  } catch (e) {
    work?.remove();
    throw e;
  }
}

/** Name, manifest digest and image ID of the single image in an OCI archive. */
export function readOciArchive(archive: string): { image: string; id: string; digest: string } {
  const read = (member: string) =>
    execFileSync('tar', ['-xOf', archive, member], { maxBuffer: 16 * 1024 * 1024 }).toString();
  const index = JSON.parse(read('index.json')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const m = index.manifests[0];
  const image = m?.annotations?.['org.opencontainers.image.ref.name'] ?? '';
  if (index.manifests.length !== 1 || !m || !image.startsWith(PROJECT_IMAGE_REPOSITORY + ':'))
    throw new Error(`${archive}: expected one manifest named ${PROJECT_IMAGE_REPOSITORY}:<tag>`);
  const manifest = JSON.parse(read(`blobs/sha256/${m.digest.replace(/^sha256:/, '')}`)) as {
    config: { digest: string };
  };
  return { image, id: manifest.config.digest, digest: m.digest };
}
