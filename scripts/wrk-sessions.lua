-- wrk script: every request carries one of the logged-in session cookies listed (one per line)
-- in the file named by $COOKIE_FILE. Each wrk thread takes its own share of the cookies and
-- cycles through them, so each session is used by one thread only.

local made = 0

function setup(thread)
  thread:set("id", made)
  made = made + 1
end

function init(args)
  local threads = tonumber(os.getenv("WRK_THREADS") or "2")
  mine = {}
  local i = 0
  for line in io.lines(os.getenv("COOKIE_FILE")) do
    if i % threads == id then
      table.insert(mine, line)
    end
    i = i + 1
  end
  k = 0
end

function request()
  k = k + 1
  return wrk.format("GET", wrk.path, { ["Cookie"] = mine[(k % #mine) + 1] })
end
