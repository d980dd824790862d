-- Argo CD actions of a BackupSchedule: backup-now sets a new rollback.nxtnewday.io/backup-now value (one
-- emergency backup). Disabled while the operator has not yet picked up the value already set: a second
-- click would replace a request nobody has seen.
local BACKUP_NOW = "rollback.nxtnewday.io/backup-now"
local annotations = obj.metadata.annotations or {}
local wanted = annotations[BACKUP_NOW]
local handled = obj.status ~= nil and obj.status.lastBackupNow ~= nil and obj.status.lastBackupNow.annotationValue or nil
local pending = wanted ~= nil and wanted ~= "" and handled ~= wanted and (#wanted <= 253 or handled == nil)
local actions = {}
actions["backup-now"] = {
  ["disabled"] = pending,
  ["iconClass"] = "fa fa-fw fa-database",
  ["displayName"] = "Back up now",
}
return actions
