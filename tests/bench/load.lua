-- wrk script: posts pre-signed webhook bodies, each at most once, spread over wrk's threads.
-- BENCH_BODIES names a file of "signature<TAB>body" lines; BENCH_THREADS is wrk's -t.
local bodies_path = os.getenv("BENCH_BODIES")
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  requests_ = {}
  local n = 0
  for line in io.lines(bodies_path) do
    if n % thread_count == id then
      local tab = line:find("\t", 1, true)
      requests_[#requests_ + 1] = wrk.format("POST", "/webhook", {
        ["Content-Type"] = "application/json",
        ["X-Hub-Signature-256"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    n = n + 1
  end
  position = 0
end

function request()
  position = position + 1
  if position > #requests_ then
    position = 1  -- out of fresh bodies: the report counts these as repeats
    repeats = (repeats or 0) + 1
  end
  return requests_[position]
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "non2xx": %d, "socket_errors": %d, "p50_ms": %f, "p99_ms": %f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
