-- Add-to-cart: POST /api/user/cart with a random shopper's Bearer token and a random product (from
-- products with stock to spare), quantity 1. Many shoppers and many products: two requests sometimes
-- hit the same cart at once (optimistic-concurrency retries happen, as in a real shop), but no cart is
-- hammered and no line nears the 99-per-line cap.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local headers = { ["Content-Type"] = "application/json" }

function request()
  headers["Authorization"] = "Bearer " .. pick(DATA.tokens)
  local body = '{"productId":"' .. pick(DATA.products) .. '","quantity":1}'
  return wrk.format("POST", "/api/user/cart", headers, body)
end
