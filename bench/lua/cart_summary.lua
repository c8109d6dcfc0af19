-- Cart summary: GET /api/user/cart for a random shopper, or for one fixed cart when BENCH_TOKEN is
-- set (the 1/20/200-line measurements).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local fixed = os.getenv("BENCH_TOKEN")
local headers = {}

function request()
  headers["Authorization"] = "Bearer " .. (fixed or pick(DATA.tokens))
  return wrk.format("GET", "/api/user/cart", headers)
end
