// gitops resume: asks the operator to resume the GitOps owners a RollbackPlan suspended (spec.gitops.policy
// suspend), through the plan's gitops-resume annotation. The operator restores what was there before.
import { Command } from 'commander';
import { Annotation } from '../../api/v1alpha1/common.js';
import type { KubeObject } from '../../kube/rest.js';
import { action } from '../command.js';
import { plansRef, type CliContext } from '../context.js';
import { CliError, ExitCode, fromApiError } from '../errors.js';
import { objectName } from '../flags.js';
import { uniqueRequestValue } from '../requests.js';

type Owner = { kind: string; name: string; namespace: string; state: string };

export function register(program: Command) {
  const gitops = program.command('gitops').description('the GitOps owners a RollbackPlan suspended');
  gitops
    .command('resume')
    .description(
      `resume the Flux / Argo CD owners the plan suspended, restoring what was there before (sets the ${Annotation.GitOpsResume} annotation)`,
    )
    .argument('<plan>', 'RollbackPlan name', objectName('RollbackPlan name'))
    .action(action(resume));
}

async function resume(ctx: CliContext, name: string) {
  let plan: KubeObject;
  try {
    plan = await ctx.client.get<KubeObject>(plansRef(ctx.namespace, name));
  } catch (e) {
    const err = fromApiError(e, `get RollbackPlan "${name}"`);
    if (err.exitCode === ExitCode.NotFound)
      throw new CliError(ExitCode.NotFound, `RollbackPlan "${name}" not found in namespace ${ctx.namespace}`);
    throw err;
  }
  const owners: Owner[] = plan.status?.gitops?.owners ?? [];
  const suspended = owners.filter((o) => o.state === 'Suspended' || o.state === 'Suspending');
  if (!suspended.length) {
    throw new CliError(
      ExitCode.Failed,
      `RollbackPlan "${name}" holds no GitOps owner suspended${owners.length ? ` (${owners.map((o) => `${o.kind} ${o.namespace}/${o.name}: ${o.state}`).join(', ')})` : ''}`,
    );
  }
  const request = uniqueRequestValue();
  try {
    await ctx.client.patch(plansRef(ctx.namespace, name), 'merge', {
      metadata: { annotations: { [Annotation.GitOpsResume]: request } },
    });
  } catch (e) {
    throw fromApiError(e, `patch RollbackPlan "${name}"`);
  }
  const refs = suspended.map((o) => `${o.kind} ${o.namespace}/${o.name}`);
  ctx.out.result({ plan: name, request, owners: refs, state: 'Requested' }, () =>
    ctx.out.line(
      `resume of ${refs.join(', ')} requested on RollbackPlan ${name} (${Annotation.GitOpsResume}=${request})`,
    ),
  );
  return ExitCode.Ok;
}
