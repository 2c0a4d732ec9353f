-- wrk script: every request signs with a new email address, as a rush of real supporters would,
-- then prints the figures load.sh reads (report.lua's `done`).
local counter = 0

function setup(thread)
  thread:set("prefix", string.format("%d-%d", os.time(), math.random(1, 1000000000)))
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"name":"Bench Supporter","email":"s%s-%d@bench.example","postcode":"SW1A 1AA","consent":true}',
    prefix, counter)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end

-- The same figures as every other row.
dofile("benches/report.lua")
