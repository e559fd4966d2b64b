-- Argo CD health check for deploybell.io/DeployJob: the health of its latest run.
--   Progressing  no run yet, a run in flight, or a change deploybell has not started a run for
--   Healthy      the latest run Succeeded
--   Degraded     the latest run Failed
--   Suspended    the latest run was Canceled: nothing failed, and nothing runs until a new spec
--                or a redeploy (kubectl deploybell redeploy) starts the next run
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for deploybell to start the first run"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for deploybell to start a run for generation " .. tostring(generation)
  return hs
end

local annotations = obj.metadata.annotations or {}
local redeploy = annotations["deploybell.io/redeploy"] or ""
local trigger = status.trigger or {}
if redeploy ~= "" and redeploy ~= (trigger.redeploy or "") then
  hs.status = "Progressing"
  hs.message = "Waiting for deploybell to start the requested redeploy"
  return hs
end

local run = "Run " .. tostring(status.run or 0)
local reason = status.reason or status.phase
local message = status.message or ""
local phase = status.phase
if phase == "Pending" or phase == "Deploying" or phase == "Verifying" then
  hs.status = "Progressing"
  hs.message = run .. " " .. phase .. ": " .. message
elseif phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = run .. " succeeded: " .. message
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = run .. " failed (" .. reason .. "): " .. message
elseif phase == "Canceled" then
  hs.status = "Suspended"
  hs.message = run .. " was canceled (" .. reason .. "): " .. message
else
  hs.status = "Unknown"
  hs.message = run .. " is in phase " .. tostring(phase)
end
return hs
