-- The search API with varied queries (mirrors search_params in bench/inproc.py): a long tail of
-- word + item, typos (fuzzy matching) alone or with the other word, some single words; a category
-- filter now and then, other sorts and later pages. Each thread records the distinct requests it sent;
-- done() merges them, so the share of cache misses is reported exactly (a first occurrence in the run
-- is a miss; concurrent first occurrences are all misses too).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local words, items, categories = DATA.words, DATA.items, DATA.categories
local letters = "abcdefghijklmnopqrstuvwxyz"
local vocabulary = {}
for _, word in ipairs(words) do table.insert(vocabulary, word) end
for _, item in ipairs(items) do table.insert(vocabulary, item) end
seen = {}

local function typo(word)
  local at = math.random(2, #word)
  local letter = math.random(#letters)
  return word:sub(1, at - 1) .. letters:sub(letter, letter) .. word:sub(at + 1)
end

local function query()
  local roll = math.random()
  if roll < 0.2 then return pick(vocabulary) end
  if roll < 0.6 then return pick(words) .. "+" .. pick(items) end
  local word, item = pick(words), pick(items)
  if math.random() < 0.5 then word = typo(word) else item = typo(item) end
  if math.random() < 0.6 then return word .. "+" .. item end
  if math.random() < 0.5 then return word end
  return item
end

function request()
  local path = "/api/products?q=" .. query()
  if math.random() < 0.3 then path = path .. "&category=" .. pick(categories) end
  local sort_roll = math.random()
  if sort_roll >= 0.9 then path = path .. "&sort=newest"
  elseif sort_roll >= 0.75 then path = path .. "&sort=-price"
  elseif sort_roll >= 0.6 then path = path .. "&sort=price" end
  local page_roll = math.random()
  if page_roll >= 0.9 then path = path .. "&page=3" elseif page_roll >= 0.7 then path = path .. "&page=2" end
  seen[path] = true
  return wrk.format("GET", path)
end

function bench_collect(thread, extra)
  extra.distinct = extra.distinct or {}
  for path in pairs(thread:get("seen") or {}) do extra.distinct[path] = true end
end

function bench_finish(out)
  local count = 0
  for _ in pairs(out.extra.distinct or {}) do count = count + 1 end
  out.extra = { distinct_queries = count }
end
