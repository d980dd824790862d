-- Argo CD health of a BackupSchedule (rollback.nxtnewday.io). The mapping is documented in
-- docs/integrations/argocd/README.md. Written for Argo CD's restricted Lua libraries (an argocd-cm script
-- without useOpenLibs has no string library), so it uses only base functions and operators.
local BACKUP_NOW = "rollback.nxtnewday.io/backup-now"
-- status.lastBackupNow.annotationValue keeps a value of at most this many characters as it is (a longer one
-- is shortened with a hash that Lua cannot compute here).
local HANDLED_VALUE_MAX = 253

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

local function isFalse(conditionType)
  local c = condition(conditionType)
  return c ~= nil and c.status == "False"
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

-- s starts with prefix, without the string library: bytewise string order puts exactly the strings that
-- start with prefix between prefix and prefix followed by the byte 255 (which UTF-8 text never contains).
local function startsWith(s, prefix)
  return type(s) == "string" and s >= prefix and s < prefix .. "\255"
end

local function result(status, message)
  return { status = status, message = message }
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  return result("Progressing", "Waiting for the operator to observe the schedule")
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  return result("Progressing", "Waiting for the operator: status is for generation " ..
    tostring(status.observedGeneration) .. ", the spec is at generation " .. tostring(generation))
end

if isTrue("Stalled") then
  return result("Degraded", describe(condition("Stalled"), "The schedule cannot run as specified"))
end

-- A backup-now value reads as in progress until its backup is recorded (a GitOps commit that changes it
-- holds later sync waves until the backup exists), and as Degraded when its Job failed.
local annotations = obj.metadata.annotations or {}
local wanted = annotations[BACKUP_NOW]
if wanted ~= nil and wanted ~= "" then
  local request = "backup-now=" .. wanted
  local handled = status.lastBackupNow or {}
  local seen = handled.annotationValue == wanted
  if #wanted > HANDLED_VALUE_MAX then
    seen = handled.annotationValue ~= nil and #handled.annotationValue == HANDLED_VALUE_MAX
  end
  if not seen then
    return result("Progressing", request .. ": waiting for the operator to start the backup")
  end
  local lastBackup = condition("LastBackupSucceeded")
  local job = handled.jobName
  if job == nil then
    -- The operator could not create the Job; it says why in LastBackupSucceeded, naming the request.
    if lastBackup ~= nil and lastBackup.status == "False" and startsWith(lastBackup.message, request) then
      return result("Degraded", describe(lastBackup, request .. ": the operator did not start a Job"))
    end
    return result("Degraded", request .. ": the operator did not start a Job")
  end
  -- The operator keeps the request's own outcome (status.lastBackupNow.result) once the Job is recorded.
  if handled.result == "Failed" then
    return result("Degraded", request .. ": " .. (handled.message or ("backup Job " .. job .. " failed")))
  end
  local recorded = handled.result == "Succeeded" or
    (status.lastSuccessfulBackup ~= nil and status.lastSuccessfulBackup.id == job)
  for _, b in ipairs(status.backups or {}) do
    if b.id == job then
      recorded = true
    end
  end
  if not recorded then
    if lastBackup ~= nil and lastBackup.status == "False" and startsWith(lastBackup.message, "backup Job " .. job .. " failed") then
      return result("Degraded", request .. ": " .. lastBackup.message)
    end
    return result("Progressing", request .. ": backup Job " .. job .. " is running")
  end
end

-- Checked after backup-now: while a value's backup runs the operator also sets Reconciling, and the
-- request's own state is the more useful message.
if isTrue("Reconciling") then
  return result("Progressing", describe(condition("Reconciling"), "The operator is working on the schedule"))
end

local ready = condition("Ready")
if ready == nil then
  return result("Progressing", "Waiting for the operator to report the schedule's state")
end
if ready.status ~= "True" then
  -- Not Stalled: the operator retries on its own (e.g. the database Secret is not there yet).
  return result("Progressing", describe(ready, "Not ready yet"))
end
if isFalse("LastBackupSucceeded") then
  -- Ready stays True when backups fail (the CronJob is in place); Argo CD should still show it.
  local lastBackup = condition("LastBackupSucceeded")
  local message = lastBackup.message
  if message == nil or message == "" then
    message = lastBackup.reason or "LastBackupSucceeded is False"
  end
  return result("Degraded", "The last backup failed: " .. message)
end
local rpo = condition("RPOMet")
if rpo ~= nil and rpo.status == "False" and rpo.reason == "ObjectiveBreached" then
  return result("Degraded", describe(rpo, "The newest good backup is older than the RPO objective"))
end
if ready.reason == "Suspended" then
  return result("Suspended", describe(ready, "Backups are suspended (spec.suspend)"))
end
return result("Healthy", describe(ready, "Ready"))
