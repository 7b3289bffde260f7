--[[ A per-model running mean, served by herd (the Lua twin of examples/mean-python).

Each input file holds one vector: numbers separated by spaces, commas or
newlines. /train replaces the model with the mean of its files; /input folds its
files into the running mean; /output returns, for each file, the Euclidean
distance of its vector to the model's mean.

    herd serve --worker 'lua5.1 examples/mean-lua/worker.lua' --files-root examples/data
]]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../../adapters/lua/?.lua;" .. package.path
local herd = require "herd_worker"
local cjson = require "cjson"

local STATE_FILE = "mean.json"
local loaded = {} -- state_dir -> state; output state directories are immutable versions

local function basename(path) return (path:match("[^/]*$")) end

local function read_vector(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  local vector = {}
  for token in text:gsub(",", " "):gmatch("%S+") do
    local x = tonumber(token)
    if x == nil then error(basename(path) .. ": not a list of numbers (" .. token .. ")", 0) end
    vector[#vector + 1] = x
  end
  if #vector == 0 then error(basename(path) .. ": empty file", 0) end
  return vector
end

local function load(state_dir)
  local f = io.open(state_dir .. "/" .. STATE_FILE, "r")
  if not f then return nil end
  local state = cjson.decode(f:read("*a"))
  f:close()
  return state
end

local function save(state_dir, state)
  local f = assert(io.open(state_dir .. "/" .. STATE_FILE, "w"))
  f:write(cjson.encode(state))
  f:close()
end

local function fold(state, req)
  for i, path in ipairs(req.files) do
    local vector = read_vector(path)
    if state == nil then
      state = { n = 0, sum = {} }
      for j = 1, #vector do state.sum[j] = 0 end
    end
    if #vector ~= #state.sum then
      error(string.format("%s has %d numbers, the model has %d", basename(path), #vector, #state.sum), 0)
    end
    state.n = state.n + 1
    for j = 1, #vector do state.sum[j] = state.sum[j] + vector[j] end
    req:progress(i / #req.files)
  end
  return state
end

herd.run {
  train = function(req)
    local state = fold(nil, req)
    save(req.state_dir, state)
    return { samples = state.n }
  end,
  input = function(req)
    local state = fold(load(req.state_dir), req)
    save(req.state_dir, state)
    return { samples = state.n }
  end,
  output = function(req)
    local state = loaded[req.state_dir]
    if state == nil then
      state = load(req.state_dir)
      if state == nil then error("model '" .. req.model .. "' is not trained yet: POST /train first", 0) end
      loaded[req.state_dir] = state
    end
    local distances = {}
    for i, path in ipairs(req.files) do
      local vector = read_vector(path)
      if #vector ~= #state.sum then
        error(string.format("%s has %d numbers, the model has %d", basename(path), #vector, #state.sum), 0)
      end
      local d = 0
      for j = 1, #vector do d = d + (vector[j] - state.sum[j] / state.n) ^ 2 end
      distances[i] = math.sqrt(d)
    end
    return distances
  end,
}
