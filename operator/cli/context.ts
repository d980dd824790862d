// The cluster connection of one CLI invocation, chosen like kubectl: --kubeconfig, else $KUBECONFIG (merged by
// kubectl's rules, kubeconfig.ts), else ~/.kube/config; --context, else the current context; -n, else the
// context's namespace, else "default".
import type { KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/v1alpha1/common.js';
import { KubeClient, type ResourceRef } from '../kube/rest.js';
import { CliError, ExitCode, fromApiError } from './errors.js';
import { checkNamespace } from './flags.js';
import { loadKubeconfig } from './kubeconfig.js';
import { makeOut, parseOutputFormat, type Out } from './output.js';

/** The global flags every command accepts (commander's optsWithGlobals()). */
export interface GlobalOptions {
  namespace?: string;
  context?: string;
  kubeconfig?: string;
  output?: string;
  requestTimeout?: string;
}

export interface CliContext {
  kc: KubeConfig;
  client: KubeClient;
  namespace: string;
  out: Out;
  /** The authenticated user's name (SelfSubjectReview), e.g. for approved-by. */
  username(): Promise<string>;
}

export const plansRef = (namespace: string, name?: string): ResourceRef => ({
  group: GROUP,
  version: VERSION,
  plural: 'rollbackplans',
  namespace,
  ...(name ? { name } : {}),
});
export const schedulesRef = (namespace: string, name?: string): ResourceRef => ({
  group: GROUP,
  version: VERSION,
  plural: 'backupschedules',
  namespace,
  ...(name ? { name } : {}),
});

/**
 * The checks of the global flags that need no kubeconfig (-n, --request-timeout): pure, a usage error. Returns
 * the request timeout in milliseconds.
 */
export function checkGlobalOptions(opts: GlobalOptions): { timeoutMs: number } {
  if (opts.namespace) checkNamespace('--namespace', opts.namespace);
  const timeoutMs = opts.requestTimeout ? Number(opts.requestTimeout) * 1000 : 30_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new CliError(ExitCode.Usage, `--request-timeout must be a positive number of seconds`);
  return { timeoutMs };
}

/** Builds the context; throws CliError(Usage/Unavailable) for a kubeconfig or context that cannot be used. */
export function cliContext(opts: GlobalOptions): CliContext {
  const out = makeOut(parseOutputFormat(opts.output));
  const kc = opts.kubeconfig ? loadKubeconfig({ explicit: opts.kubeconfig }) : loadKubeconfig();
  if (opts.context) {
    if (!kc.getContextObject(opts.context))
      throw new CliError(ExitCode.Usage, `context "${opts.context}" not found in the kubeconfig`);
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster())
    throw new CliError(ExitCode.Unavailable, 'the kubeconfig has no current cluster (set a context)');
  const { timeoutMs } = checkGlobalOptions(opts);
  const namespace = checkNamespace(
    opts.namespace ? '--namespace' : "the context's namespace",
    opts.namespace || kc.getContextObject(kc.getCurrentContext())?.namespace || 'default',
  );
  const client = new KubeClient(kc, { userAgent: 'nxt-rollback-cli', timeoutMs });
  let user: Promise<string> | undefined;
  return {
    kc,
    client,
    namespace,
    out,
    username: () =>
      (user ??= client
        .create<{ status?: { userInfo?: { username?: string } } }>(
          { group: 'authentication.k8s.io', version: 'v1', plural: 'selfsubjectreviews' },
          { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
        )
        .then(
          (r) => {
            const name = r.status?.userInfo?.username;
            if (!name) throw new CliError(ExitCode.Failed, 'the API server did not say who you are');
            return name;
          },
          (e) => {
            throw fromApiError(e, 'who am I (create selfsubjectreviews.authentication.k8s.io)');
          },
        )),
  };
}
