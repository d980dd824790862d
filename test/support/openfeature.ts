import { ApiextensionsV1Api, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { eventually, kubectl, testClients } from './kube.js';

const FEATURE_FLAG = { group: 'core.openfeature.dev', version: 'v1beta1', plural: 'featureflags' } as const;

/**
 * The OpenFeature Operator's FeatureFlag CRD, reduced to what the operator reads and writes
 * (spec.flagSpec.flags.<key>.state); the rest of the object is kept as given. Idempotent.
 */
export async function installFeatureFlagCrd(): Promise<void> {
  const crd: V1CustomResourceDefinition = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'featureflags.core.openfeature.dev' },
    spec: {
      group: FEATURE_FLAG.group,
      names: {
        kind: 'FeatureFlag',
        listKind: 'FeatureFlagList',
        plural: 'featureflags',
        singular: 'featureflag',
      },
      scope: 'Namespaced',
      versions: [
        {
          name: FEATURE_FLAG.version,
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: { spec: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
            },
          },
        },
      ],
    },
  };
  const { kc } = testClients();
  await kc
    .makeApiClient(ApiextensionsV1Api)
    .createCustomResourceDefinition({ body: crd })
    .catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
  await kubectl(
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/featureflags.core.openfeature.dev',
  );
}

/** A FeatureFlag with boolean flags `{ key: 'ENABLED' | 'DISABLED' }`. */
export async function createFeatureFlag(
  namespace: string,
  name: string,
  states: Record<string, 'ENABLED' | 'DISABLED'>,
): Promise<void> {
  const { custom } = testClients();
  const flags = Object.fromEntries(
    Object.entries(states).map(([key, state]) => [
      key,
      { state, variants: { on: true, off: false }, defaultVariant: 'on' },
    ]),
  );
  await eventually('the FeatureFlag to be created', async () => {
    await custom.createNamespacedCustomObject({
      ...FEATURE_FLAG,
      namespace,
      body: {
        apiVersion: `${FEATURE_FLAG.group}/${FEATURE_FLAG.version}`,
        kind: 'FeatureFlag',
        metadata: { name },
        spec: { flagSpec: { flags } },
      },
    });
    return true;
  });
}

export async function getFeatureFlag(namespace: string, name: string): Promise<any> {
  const { custom } = testClients();
  return custom.getNamespacedCustomObject({ ...FEATURE_FLAG, namespace, name });
}
