-- Argo CD action: take an emergency backup now. The operator starts one backup Job for each new value of the
-- annotation rollback.nxtnewday.io/backup-now (status.lastBackupNow records the value handled); the value is
-- the UTC time, so each click is a new request (two clicks within one second are one request).
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollback.nxtnewday.io/backup-now"] = "argocd-" .. os.date("!%Y%m%dT%H%M%SZ")
return obj
