import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { kubectl, testClients } from './kube.js';

// A STAND-IN for Argo CD's application-controller, which cannot be built here (research §10.5): it plays only
// the self-heal of one Deployment. Whenever the Deployment or its Application changes, and the Application's
// automated sync is on (spec.syncPolicy.automated present and enabled not false: IsAutomatedSyncEnabled), it
// puts the desired pod template ("what Git says") back, as self-heal does at once after a watch event
// (research §2.3). Everything else Argo CD does (rendering, sync waves, health, status) is not played.

const APP = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' };

export class ArgoSelfHealActor {
  /** How many times it put the desired template back. */
  heals = 0;
  private readonly aborts: AbortController[] = [];
  private busy: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(
    private readonly kc: KubeConfig,
    private readonly app: { namespace: string; name: string },
    private readonly deployment: { namespace: string; name: string },
    private readonly desiredTemplate: object,
  ) {}

  /** Starts watching; the desired template is the Deployment's template now. */
  static async start(
    app: { namespace: string; name: string },
    deployment: { namespace: string; name: string },
  ): Promise<ArgoSelfHealActor> {
    const { kc, apps } = testClients();
    const d = await apps.readNamespacedDeployment(deployment);
    const actor = new ArgoSelfHealActor(kc, app, deployment, d.spec!.template);
    await actor.watch(
      `/apis/apps/v1/namespaces/${deployment.namespace}/deployments`,
      `metadata.name=${deployment.name}`,
    );
    await actor.watch(
      `/apis/${APP.group}/${APP.version}/namespaces/${app.namespace}/${APP.plural}`,
      `metadata.name=${app.name}`,
    );
    return actor;
  }

  private async watch(path: string, fieldSelector: string): Promise<void> {
    const ctrl = await new Watch(this.kc).watch(
      path,
      { fieldSelector },
      () => this.enqueue(),
      () => {},
    );
    this.aborts.push(ctrl);
  }

  private enqueue(): void {
    this.busy = this.busy.then(() => this.heal()).catch(() => {});
  }

  private async heal(): Promise<void> {
    if (this.stopped) return;
    const { apps, custom } = testClients();
    const app: any = await custom.getNamespacedCustomObject({ ...APP, ...this.app });
    const automated = app.spec?.syncPolicy?.automated;
    if (!automated || automated.enabled === false) return;
    const d = await apps.readNamespacedDeployment(this.deployment);
    if (
      isDeepStrictEqual(
        JSON.parse(JSON.stringify(d.spec?.template)),
        JSON.parse(JSON.stringify(this.desiredTemplate)),
      )
    )
      return;
    await kubectl(
      '-n',
      this.deployment.namespace,
      'patch',
      'deployment',
      this.deployment.name,
      '--type=json',
      '--field-manager=argocd-controller',
      '-p',
      JSON.stringify([{ op: 'replace', path: '/spec/template', value: this.desiredTemplate }]),
    );
    this.heals++;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const a of this.aborts) a.abort();
    await this.busy;
  }
}
