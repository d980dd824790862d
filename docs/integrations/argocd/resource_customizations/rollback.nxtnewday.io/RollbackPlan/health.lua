-- Argo CD health of a RollbackPlan (rollback.nxtnewday.io). The mapping is documented in
-- docs/integrations/argocd/README.md. Written for Argo CD's restricted Lua libraries (an argocd-cm script
-- without useOpenLibs has no string library), so it uses only base functions and operators.
local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function isTrue(conditionType)
  local c = condition(conditionType)
  return c ~= nil and c.status == "True"
end

-- "<reason>: <message>", or whichever of the two is set, or the fallback.
local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local reason, message = c.reason or "", c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  if reason ~= "" then
    return reason
  end
  return fallback
end

local function result(status, message)
  return { status = status, message = message }
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  return result("Progressing", "Waiting for the operator to observe the plan")
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  return result("Progressing", "Waiting for the operator: status is for generation " ..
    tostring(status.observedGeneration) .. ", the spec is at generation " .. tostring(generation))
end

local phase = status.phase
local ready = condition("Ready")

-- Failed (a step failed, or the spec cannot run): terminal until the spec changes.
if phase == "Failed" or isTrue("Stalled") then
  local stalled = condition("Stalled")
  if stalled == nil or stalled.status ~= "True" then
    stalled = ready
  end
  return result("Degraded", describe(stalled, "The rollback failed"))
end

-- Waiting for a person (approval) or for trigger.confirmFor to pass without a veto.
if phase == "AwaitingApproval" then
  return result("Suspended", describe(condition("AwaitingApproval"), "Waiting for an approval"))
end

-- Running, or accepted and about to start: the Reconciling condition names the step (or what it waits for).
if phase == "Pending" and not isTrue("Reconciling") then
  return result("Progressing", describe(ready, "Accepted; the rollback has not started yet"))
end
if phase == "Running" or isTrue("Reconciling") then
  return result("Progressing", describe(condition("Reconciling"), describe(ready, "The rollback is running")))
end

if ready ~= nil and ready.status == "True" then
  if phase == "Armed" then
    local trigger = condition("TriggerHealthy")
    if trigger ~= nil and trigger.status == "False" then
      -- Armed but blind: a trigger condition cannot be evaluated, so the automatic rollback could not fire.
      return result("Degraded", "Armed, but a trigger condition cannot be evaluated: " ..
        describe(trigger, "TriggerHealthy is False"))
    end
  end
  if phase == "Succeeded" and isTrue("GitOpsSuspended") then
    -- The rollback is in place, and GitOps reconciliation stays paused until the revert lands in Git.
    return result("Suspended", describe(condition("GitOpsSuspended"), "GitOps reconciliation is suspended"))
  end
  -- Succeeded, DryRunComplete, Armed, Expired, Vetoed: settled.
  return result("Healthy", describe(ready, "Ready"))
end

if ready ~= nil then
  return result("Progressing", describe(ready, "Not ready yet"))
end
return result("Progressing", "Waiting for the operator to report the plan's state")
