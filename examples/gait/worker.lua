--[[ Activity and gait recognition from accelerometer features, served by
herd: a random forest (forest.lua) per model, in Lua, the runtime family of
the original Torch/Lua wrapper.

Files are CSV with a header row naming the columns. For /train, the column
"class" is each row's label (an activity, a user, ...) and every other
column a numeric feature ("?" or empty: missing, filled with the training
mean). /output takes rows with the same feature columns (a "class" column,
if any, is ignored) and returns each row's predicted class as its index in
the sorted class list that /train reported (0-based).

    herd serve --worker 'luajit examples/gait/worker.lua --trees 100' --files-root DIR

Runs on LuaJIT or Lua 5.1 with lua-cjson (Debian: luajit or lua5.1, lua-cjson).
]]

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. here .. "/../../adapters/lua/?.lua;" .. package.path
local herd = require "herd_worker"
local cjson = require "cjson"
local forest = require "forest"

local TREES = 100
for i = 1, #arg do
  if arg[i] == "--trees" then TREES = tonumber(arg[i + 1]) or error("--trees takes a number", 0) end
end

local STATE_FILE = "forest.json"
local loaded = {} -- state_dir -> model; output state directories never change

local function split(line)
  local fields = {}
  for field in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = field:gsub("^%s+", ""):gsub("%s+$", "") end
  return fields
end

-- read_table returns the header and the rows (arrays of strings) of the
-- CSV files; every file must have the same header.
local function read_table(paths, uris)
  local header, rows = nil, {}
  for i, path in ipairs(paths) do
    local f = assert(io.open(path, "r"))
    local first = true
    for line in f:lines() do
      line = line:gsub("\r$", "")
      if line ~= "" then
        local fields = split(line)
        if first then
          if header and table.concat(header, ",") ~= table.concat(fields, ",") then
            error(uris[i] .. ": its header differs from the first file's", 0)
          end
          header, first = fields, false
        else
          if #fields ~= #header then
            error(string.format("%s: a row has %d fields, the header %d", uris[i], #fields, #header), 0)
          end
          rows[#rows + 1] = fields
        end
      end
    end
    f:close()
  end
  if not header or #rows == 0 then error("no rows in " .. table.concat(uris, ", "), 0) end
  return header, rows
end

local function column(header, name)
  for i, h in ipairs(header) do if h == name then return i end end
end

-- features turns rows into numbers in the order of names, filling missing
-- values with means (computed here when means is nil).
local function features(header, rows, names, means, uris)
  local cols = {}
  for j, name in ipairs(names) do
    cols[j] = column(header, name) or error("column " .. name .. " is missing in " .. table.concat(uris, ", "), 0)
  end
  local X = {}
  for i, r in ipairs(rows) do
    local x = {}
    for j, c in ipairs(cols) do
      local v = r[c]
      if v == "?" or v == "" then
        x[j] = false
      else
        x[j] = tonumber(v) or error(string.format("%s: row %d, column %s: %q is not a number", uris[1], i, names[j], v), 0)
      end
    end
    X[i] = x
  end
  if not means then
    means = {}
    for j = 1, #names do
      local sum, n = 0, 0
      for _, x in ipairs(X) do if x[j] then sum, n = sum + x[j], n + 1 end end
      means[j] = n > 0 and sum / n or 0
    end
  end
  for _, x in ipairs(X) do
    for j = 1, #names do if x[j] == false then x[j] = means[j] end end
  end
  return X, means
end

local function train(req)
  local header, rows = read_table(req.files, req.uris)
  local label = column(header, "class") or error("no \"class\" column: /train needs each row's label", 0)
  local names = {}
  for i, h in ipairs(header) do if i ~= label then names[#names + 1] = h end end
  local classes, index = {}, {}
  for _, r in ipairs(rows) do
    if not index[r[label]] then index[r[label]] = true; classes[#classes + 1] = r[label] end
  end
  table.sort(classes)
  for i, c in ipairs(classes) do index[c] = i end
  local X, means = features(header, rows, names, nil, req.uris)
  local y = {}
  for i, r in ipairs(rows) do y[i] = index[r[label]] end
  local model = forest.train(X, y, { trees = TREES, seed = 1, progress = function(p) req:progress(p) end })
  local f = assert(io.open(req.state_dir .. "/" .. STATE_FILE, "w"))
  f:write(cjson.encode({ features = names, classes = classes, means = means, forest = model }))
  f:close()
  return { classes = classes, rows = #rows, trees = TREES }
end

local function output(req)
  local m = loaded[req.state_dir]
  if not m then
    local f = io.open(req.state_dir .. "/" .. STATE_FILE, "r")
    if not f then error("model " .. req.model .. " is not trained yet: POST /train first", 0) end
    m = cjson.decode(f:read("*a"))
    f:close()
    loaded[req.state_dir] = m
  end
  local header, rows = read_table(req.files, req.uris)
  local X = features(header, rows, m.features, m.means, req.uris)
  local out = {}
  for i, x in ipairs(X) do out[i] = forest.predict(m.forest, x) - 1 end
  return out
end

herd.run {
  train = train,
  input = function() error("this model learns only from /train: send all its rows there", 0) end,
  output = output,
}
