-- Set-quantity: PATCH /api/user/cart/items/{id} on a line the shopper has (set up by the prepare
-- step), to a random quantity from 1 to 9 (one time in nine it is unchanged: a no-op, as in a shop).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local headers = { ["Content-Type"] = "application/json" }

function request()
  local shopper = math.random(#DATA.tokens)
  headers["Authorization"] = "Bearer " .. DATA.tokens[shopper]
  local product = pick(DATA.lines[shopper])
  local body = '{"quantity":' .. math.random(1, 9) .. "}"
  return wrk.format("PATCH", "/api/user/cart/items/" .. product, headers, body)
end
