--[[ A random forest (Breiman 2001) in plain Lua 5.1 / LuaJIT: bagged CART
trees grown to purity on Gini impurity, each split chosen among a random
subset of the features; a prediction averages the trees' leaf class
frequencies.

  local forest = require "forest"
  local model = forest.train(rows, labels, { trees = 100, seed = 1 })
  local class, probabilities = forest.predict(model, row)

rows are arrays of numbers (no missing values: impute first), labels are
class indices 1..k. A model is plain tables, so it encodes to JSON.
]]

local M = {}

-- A small deterministic generator (Park-Miller), so a seed reproduces a forest
-- on any Lua.
local function rng(seed)
  local state = (seed or 1) % 2147483647
  if state <= 0 then state = state + 2147483646 end
  return function(n) -- an integer in 1..n
    state = (state * 16807) % 2147483647
    return 1 + (state % n)
  end
end

-- A leaf keeps the classes it saw as a flat list {class, frequency, ...}:
-- compact in JSON when most leaves are pure, as grown trees' are.
local function leaf(counts, n, k)
  local l = {}
  for c = 1, k do
    if counts[c] > 0 then
      l[#l + 1] = c
      l[#l + 1] = counts[c] / n
    end
  end
  return { leaf = l }
end

local function gini_gain(left, right, nl, nr, k)
  -- Weighted Gini impurity of the two sides (lower is better).
  local gl, gr = 1, 1
  for c = 1, k do
    if nl > 0 then local p = left[c] / nl; gl = gl - p * p end
    if nr > 0 then local p = right[c] / nr; gr = gr - p * p end
  end
  return (nl * gl + nr * gr) / (nl + nr)
end

-- grow builds the subtree over rows idx[lo..hi] and returns its node:
-- {f = feature, t = threshold, l = left, r = right} or a leaf.
local function grow(X, y, k, idx, lo, hi, opts, rand, depth)
  local n = hi - lo + 1
  local counts = {}
  for c = 1, k do counts[c] = 0 end
  for i = lo, hi do counts[y[idx[i]]] = counts[y[idx[i]]] + 1 end
  local pure = false
  for c = 1, k do if counts[c] == n then pure = true end end
  if pure or n <= opts.min_leaf or depth >= opts.max_depth then
    return leaf(counts, n, k)
  end

  local p = #X[idx[lo]]
  local best_score, best_f, best_t = math.huge, nil, nil
  local order = {}
  for _ = 1, opts.mtry do
    local f = rand(p)
    for i = lo, hi do order[i - lo + 1] = idx[i] end
    for i = n + 1, #order do order[i] = nil end
    table.sort(order, function(a, b) return X[a][f] < X[b][f] end)
    local left, right = {}, {}
    for c = 1, k do left[c] = 0; right[c] = counts[c] end
    for i = 1, n - 1 do
      local c = y[order[i]]
      left[c] = left[c] + 1
      right[c] = right[c] - 1
      local v, next_v = X[order[i]][f], X[order[i + 1]][f]
      if v < next_v then
        local s = gini_gain(left, right, i, n - i, k)
        if s < best_score then
          best_score, best_f, best_t = s, f, (v + next_v) / 2
        end
      end
    end
  end
  if best_f == nil then -- every tried feature is constant here
    return leaf(counts, n, k)
  end

  -- Partition idx[lo..hi] in place around the threshold.
  local i, j = lo, hi
  while i <= j do
    if X[idx[i]][best_f] <= best_t then
      i = i + 1
    else
      idx[i], idx[j] = idx[j], idx[i]
      j = j - 1
    end
  end
  return {
    f = best_f, t = best_t,
    l = grow(X, y, k, idx, lo, i - 1, opts, rand, depth + 1),
    r = grow(X, y, k, idx, i, hi, opts, rand, depth + 1),
  }
end

-- train grows opts.trees trees (default 100) on bootstrap samples.
function M.train(X, y, opts)
  opts = opts or {}
  local k = 0
  for _, c in ipairs(y) do if c > k then k = c end end
  local p = #X[1]
  local o = {
    trees = opts.trees or 100,
    mtry = opts.mtry or math.max(1, math.floor(math.sqrt(p))),
    min_leaf = opts.min_leaf or 1,
    max_depth = opts.max_depth or 40,
  }
  local rand = rng(opts.seed or 1)
  local model = { k = k, trees = {} }
  local n = #X
  for t = 1, o.trees do
    local idx = {}
    for i = 1, n do idx[i] = rand(n) end
    model.trees[t] = grow(X, y, k, idx, 1, n, o, rand, 0)
    if opts.progress then opts.progress(t / o.trees) end
  end
  return model
end

-- predict returns the most likely class of row and the class frequencies
-- averaged over the trees.
function M.predict(model, row)
  local prob = {}
  for c = 1, model.k do prob[c] = 0 end
  for _, node in ipairs(model.trees) do
    while node.leaf == nil do
      if row[node.f] <= node.t then node = node.l else node = node.r end
    end
    local l = node.leaf
    for i = 1, #l, 2 do prob[l[i]] = prob[l[i]] + l[i + 1] end
  end
  local best = 1
  for c = 1, model.k do
    prob[c] = prob[c] / #model.trees
    if prob[c] > prob[best] then best = c end
  end
  return best, prob
end

return M
