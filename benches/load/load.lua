-- wrk script of benches/load.rs. Arguments after `--`: MODE [IDS_FILE]
--   static : the URL's path, unchanged (GET /health, GET /authors?pageSize=20)
--   get    : GET /authors/<id>, a random id (one per line) of IDS_FILE per request
--   post   : POST /authors with a new author per request
-- Counts responses by class: 2xx/3xx, 503 with Retry-After (load shed), anything else
-- (by status), and prints one JSON line in done().

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  ok, shed, other = 0, 0, {}
  local mode = args[1] or "static"
  math.randomseed(os.time() * 1000 + tid)
  if mode == "get" then
    local ids = {}
    for line in io.lines(args[2]) do
      if #line > 0 then ids[#ids + 1] = "/authors/" .. line end
    end
    assert(#ids > 0, "no ids in " .. tostring(args[2]))
    local n = #ids
    request = function()
      return wrk.format("GET", ids[math.random(n)])
    end
  elseif mode == "post" then
    local headers = { ["Content-Type"] = "application/json" }
    local count = 0
    request = function()
      count = count + 1
      return wrk.format("POST", "/authors", headers,
        '{"name":"Load author ' .. tid .. '-' .. count .. '","dob":"1970-01-01"}')
    end
  elseif mode ~= "static" then
    error("unknown mode " .. mode)
  end
end

function response(status, headers)
  if status < 400 then
    ok = ok + 1
  elseif status == 503 and (headers["Retry-After"] or headers["retry-after"]) then
    shed = shed + 1
  else
    other[status] = (other[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local n_ok, n_shed, codes = 0, 0, {}
  for _, thread in ipairs(threads) do
    n_ok = n_ok + thread:get("ok")
    n_shed = n_shed + thread:get("shed")
    for status, n in pairs(thread:get("other")) do
      codes[status] = (codes[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(codes) do
    parts[#parts + 1] = string.format('"%d":%d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"rps":%.2f,"p50_ms":%.3f,"p99_ms":%.3f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"status":{"ok":%d,"shed_503":%d,"other":{%s}}}\n',
    summary.requests, summary.duration,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect, e.read, e.write, e.timeout,
    n_ok, n_shed, table.concat(parts, ",")))
end
