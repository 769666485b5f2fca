-- wrk script for scripts/scale-out.sh: each request carries one of the logged-in session cookies
-- of $COOKIE_FILE; 4 in 5 read the session (GET /api/session), 1 in 5 writes it (GET /: the visit
-- counter). Every answer is checked: a logged-in request answered as anonymous (401 from the API,
-- or the login link on /) is counted, as are 5xx answers, and the totals are printed at the end.

local threads = {}
local made = 0

function setup(thread)
  thread:set("id", made)
  made = made + 1
  table.insert(threads, thread)
end

function init(args)
  local count = tonumber(os.getenv("WRK_THREADS") or "2")
  mine = {}
  local i = 0
  for line in io.lines(os.getenv("COOKIE_FILE")) do
    if i % count == id then
      table.insert(mine, line)
    end
    i = i + 1
  end
  k = 0
  anonymous = 0
  server_errors = 0
  ok = 0
end

function request()
  k = k + 1
  local path = "/api/session"
  if k % 5 == 0 then
    path = "/"
  end
  return wrk.format("GET", path, { ["Cookie"] = mine[(k % #mine) + 1] })
end

function response(status, headers, body)
  if status == 401 or (status == 200 and string.find(body, 'id="login-link"', 1, true)) then
    anonymous = anonymous + 1
  elseif status >= 500 then
    server_errors = server_errors + 1
  elseif status == 200 then
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local a, e, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("anonymous")
    e = e + t:get("server_errors")
    o = o + t:get("ok")
  end
  io.write(string.format("checked: ok=%d anonymous=%d server_errors=%d\n", o, a, e))
end
