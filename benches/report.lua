-- wrk script for plain GETs: prints the figures load.sh reads.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1000000
  local e = summary.errors
  io.write(string.format("rps %.0f\n", summary.requests / seconds))
  io.write(string.format("p99_ms %.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("errors %d\n", e.connect + e.read + e.write + e.timeout + e.status))
end
