-- wrk script: every request signs with a new email address, as a rush of real supporters would,
-- then prints the figures load.sh reads.
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

done = function(summary, latency, requests)
  local seconds = summary.duration / 1000000
  local e = summary.errors
  io.write(string.format("rps %.0f\n", summary.requests / seconds))
  io.write(string.format("p99_ms %.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("errors %d\n", e.connect + e.read + e.write + e.timeout + e.status))
end
