-- The product list page, as an anonymous visitor sees it first (GET /, cached per catalog version).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/"
wrk.headers["Accept"] = "text/html"
