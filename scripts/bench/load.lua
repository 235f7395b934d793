-- wrk's script for the bench (scripts/bench/wrk.ts): replays the requests of a file, one per line
-- ("METHOD<TAB>PATH<TAB>BODY", BODY optional), in order and round again, each formatted once at start
-- (wrk's documented fastest way), and prints the run's figures as one JSON line at the end.
--   wrk -s load.lua <url> -- <requests file> <content-type>

local requests, count, next_index = {}, 0, 0

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open the requests file " .. tostring(args[1]))
  local headers = { ["content-type"] = args[2] }
  for line in file:lines() do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
    assert(method, "bad request line: " .. line)
    count = count + 1
    requests[count] = wrk.format(method, path, body ~= "" and headers or nil, body ~= "" and body or nil)
  end
  file:close()
  assert(count > 0, "the requests file is empty")
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
