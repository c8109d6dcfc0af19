-- Baseline: GET /healthz, a trivial view through the whole middleware stack (no I/O).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/healthz"
