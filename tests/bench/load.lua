-- wrk script: posts pre-signed webhook bodies, each at most once, spread over wrk's threads.
-- BENCH_BODIES names a file of "signature<TAB>body" lines; BENCH_THREADS is wrk's -t.
-- BENCH_START: each thread begins after that many of its bodies, so runs in turn on one file
-- (the slices of a load) each post bodies none before them posted; the report's "end" is
-- where the next run begins. "latency_ms" is the latency at every tenth of a percentile, so
-- the slices of a load can be read as one distribution (serving.merged).
local bodies_path = os.getenv("BENCH_BODIES")
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")
local start = tonumber(os.getenv("BENCH_START") or "0")
local next_id = 0
local threads = {}

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
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
  position = start
  repeats = 0
end

function request()
  position = position + 1
  if position > #requests_ then
    position = 1  -- out of fresh bodies: the report counts these as repeats
    repeats = repeats + 1
  end
  return requests_[position]
end

function done(summary, latency, requests)
  -- A request sent but not answered when the run ended was still posted: "end" counts it.
  local last, repeated = start, 0
  for _, thread in ipairs(threads) do
    last = math.max(last, thread:get("position"))
    repeated = repeated + thread:get("repeats")
  end
  local grid = {}
  for tenth = 1, 999 do
    grid[tenth] = string.format("%.3f", latency:percentile(tenth / 10) / 1e3)
  end
  grid[1000] = string.format("%.3f", latency.max / 1e3)  -- wrk's percentile(100) reads 0
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "non2xx": %d, "socket_errors": %d, "end": %d, '
      .. '"repeats": %d, "latency_ms": [%s]}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    last, repeated, table.concat(grid, ", ")))
end
