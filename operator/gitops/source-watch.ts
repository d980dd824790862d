// Watches on the sources of suspended GitOps owners (Flux GitRepository & co., Argo CD Applications), so a new
// revision wakes the plan that waits for it at once instead of at its next GITOPS_RESUME_CHECK_INTERVAL requeue.
// Flux and Argo CD are optional: a watch starts only after a read of that very object succeeded (its API is
// served, the operator may read it there), never at start-up, so a cluster without them sees no error loop.
import type { Logger } from 'winston';
import type { BackgroundTasks } from '../kube/background-tasks.js';
import { Informer } from '../kube/informer.js';
import type { KubeClient, KubeObject } from '../kube/rest.js';
import { FLUX_SOURCE_RESOURCE, OWNER_RESOURCE, revisionOf } from './owner-pause.js';

const TASK_OWNER = 'gitops-source-watches';

/** `Kind namespace/name`: how status.gitops.owners[].source names a watched object. */
export const sourceId = (kind: string, namespace: string, name: string) => `${kind} ${namespace}/${name}`;

/** Parses a status.gitops.owners[].source value back (`GitRepository flux-system/app`). */
export function parseSourceId(id: string | undefined): { kind: string; namespace: string } | undefined {
  const m = /^(\w+) ([a-z0-9-]+)\/[^/]+$/.exec(id ?? '');
  return m ? { kind: m[1]!, namespace: m[2]! } : undefined;
}

export class GitOpsSourceWatches {
  private readonly started = new Set<string>();

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly tasks: BackgroundTasks,
    /** Called with the source id of an object whose revision changed. */
    private readonly changed: (source: string) => void,
  ) {}

  /** Watches the objects of `kind` in `namespace` from now on (idempotent); unknown kinds are ignored. */
  ensure(kind: string, namespace: string): void {
    const resource = kind === 'Application' ? OWNER_RESOURCE.Application : FLUX_SOURCE_RESOURCE[kind];
    const key = `${kind}/${namespace}`;
    if (!resource || this.started.has(key)) return;
    this.started.add(key);
    const argocd = kind === 'Application';
    const informer = new Informer<KubeObject>(this.client, { ...resource, namespace }, { log: this.log });
    informer.addHandler({
      onUpdate: (old, now) => {
        if (revisionOf(old, argocd) !== revisionOf(now, argocd))
          this.changed(sourceId(kind, namespace, now.metadata.name));
      },
    });
    this.tasks.ensure(
      TASK_OWNER,
      key,
      ({ signal }) =>
        new Promise<void>((done) => {
          informer.start();
          signal.addEventListener(
            'abort',
            () => {
              informer.stop();
              done();
            },
            { once: true },
          );
        }),
      () => {},
    );
  }
}
