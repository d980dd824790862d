// Loading the kubeconfig the way kubectl does (client-go's loading rules), which client-node's loadFromDefault
// does not: with several files in $KUBECONFIG the FIRST file that sets current-context wins, the first
// definition of each cluster, user and context name wins, missing files are skipped and duplicates are not
// errors. A file that cannot be parsed is reported by reason and position only: the YAML parser's own message
// quotes the file, and kubeconfigs hold tokens.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node';
import { CliError, ExitCode } from './errors.js';

const SERVICEACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeconfigSource {
  /** --kubeconfig: this one file, which must exist. */
  explicit?: string;
  /** $KUBECONFIG: a list of files (':' separated; ';' on Windows). */
  env?: string;
  home?: string;
  /** Inside a pod without a kubeconfig: the ServiceAccount's token, like kubectl. */
  inCluster?: boolean;
}

export const NO_KUBECONFIG = 'no kubeconfig found (set KUBECONFIG or --kubeconfig)';

/** The merged kubeconfig; throws CliError(Unavailable) when there is none or a file cannot be read. */
export function loadKubeconfig(src: KubeconfigSource = defaultSource()): KubeConfig {
  if (src.explicit) {
    if (!existsSync(src.explicit))
      throw new CliError(ExitCode.Unavailable, `kubeconfig ${src.explicit} does not exist`);
    return loadFile(src.explicit);
  }
  const files = src.env ? src.env.split(delimiter).filter(Boolean) : [];
  if (!files.length && src.home) files.push(join(src.home, '.kube', 'config'));
  const present = files.filter((f) => existsSync(f));
  if (!present.length) {
    if (!src.env && src.inCluster) {
      const kc = new KubeConfig();
      kc.loadFromCluster();
      return kc;
    }
    throw new CliError(ExitCode.Unavailable, NO_KUBECONFIG);
  }
  return mergeKubeconfigs(present.map(loadFile));
}

function defaultSource(): KubeconfigSource {
  return {
    env: process.env.KUBECONFIG,
    home: homedir(),
    inCluster: !!process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICEACCOUNT_TOKEN),
  };
}

/** kubectl's merge: the first current-context set wins; the first definition of each name wins. */
export function mergeKubeconfigs(configs: KubeConfig[]): KubeConfig {
  const clusters = new Map<string, Cluster>();
  const users = new Map<string, User>();
  const contexts = new Map<string, Context>();
  let currentContext = '';
  for (const kc of configs) {
    if (!currentContext && kc.currentContext) currentContext = kc.currentContext;
    for (const c of kc.clusters) if (!clusters.has(c.name)) clusters.set(c.name, c);
    for (const u of kc.users) if (!users.has(u.name)) users.set(u.name, u);
    for (const c of kc.contexts) if (!contexts.has(c.name)) contexts.set(c.name, c);
  }
  const merged = new KubeConfig();
  merged.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext,
  });
  return merged;
}

/** One file, with relative certificate paths resolved against its directory (client-node's loadFromFile). */
function loadFile(file: string): KubeConfig {
  const kc = new KubeConfig();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(
      ExitCode.Unavailable,
      `cannot read kubeconfig ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  // An empty file (or one with only comments: a YAML null) is an empty kubeconfig (kubectl), not an error.
  if (!text.replace(/^\s*#.*$/gm, '').trim()) return kc;
  try {
    kc.loadFromFile(file);
  } catch (e) {
    throw new CliError(ExitCode.Unavailable, `cannot load kubeconfig ${file}: ${safeReason(e)}`);
  }
  return kc;
}

/**
 * Why a kubeconfig could not be loaded, without its content: a YAML error's reason and position (its message
 * quotes the lines around the error), client-node's own checks ("users[0].name is missing") as they are.
 */
export function safeReason(e: unknown): string {
  const y = e as { name?: string; reason?: string; mark?: { line?: number; column?: number } };
  if (y?.name === 'YAMLException' || y?.mark) {
    const where =
      typeof y.mark?.line === 'number'
        ? ` (line ${y.mark.line + 1}${typeof y.mark.column === 'number' ? `, column ${y.mark.column + 1}` : ''})`
        : '';
    return `not valid YAML: ${y.reason ?? 'syntax error'}${where}`;
  }
  const msg = (e as Error)?.message ?? String(e);
  // client-node's checks name a field; anything longer or multi-line might quote the file: keep the first line.
  const first = msg.split('\n')[0]!;
  return first.length <= 160 ? first : `${first.slice(0, 159)}…`;
}
