--[[ herd worker adapter for Lua 5.1 and LuaJIT: write three functions, never a server.

    local herd = require "herd_worker"
    herd.run{
      train  = function(req) ... return {samples = 3} end,  -- result: any JSON value
      input  = function(req) ... end,
      output = function(req) return {0.5} end,              -- the outputVector
      setup  = function() ... end,                          -- optional: load libraries, warm up
    }

req.files are local paths fetched by herd, req.state_dir the model's state
directory (for output: the latest saved version, read only), req.model the model
key, req:progress(fraction) reports progress to GET /status.

Speaks herd's worker protocol version 1 (docs/worker-protocol.md) on stdin and
stdout, with lua-cjson (Debian package lua-cjson). print() and io.write() go to
stderr, which herd keeps as the job's log.
]]

local ok, cjson = pcall(require, "cjson")
if not ok then
  io.stderr:write("herd_worker: lua-cjson is required (Debian: apt-get install lua-cjson)\n")
  os.exit(1)
end

local M = { PROTOCOL = 1 }

local stdout = io.stdout
local stderr = io.stderr

local function send(msg)
  stdout:write(cjson.encode(msg), "\n")
  stdout:flush()
end

-- The algorithm's output must not corrupt the protocol.
print = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  stderr:write(table.concat(parts, "\t"), "\n")
end
io.output(stderr)

local Request = {}
Request.__index = Request

function Request:progress(fraction, message)
  send({ type = "progress", id = self.id, progress = fraction, message = message or "" })
end

local function is_interrupt(err)
  return type(err) == "string" and err:find("interrupted!", 1, true) ~= nil
end

-- encode_vector writes a list of numbers as JSON with full double precision.
local function encode_vector(list)
  local parts = {}
  for i, v in ipairs(list) do
    local x = tonumber(v)
    if x == nil or x ~= x or x == math.huge or x == -math.huge then
      error("output element " .. i .. " is not a finite number: " .. tostring(v), 0)
    end
    parts[i] = string.format("%.17g", x)
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- run serves requests until stdin closes. handlers: train, input, output, setup.
function M.run(handlers)
  if handlers.setup then handlers.setup() end
  send({ type = "ready", protocol = M.PROTOCOL })
  while true do
    -- lua.c turns SIGINT into an "interrupted!" error; between requests it is ignored.
    local okread, line = pcall(io.read, "*l")
    if okread then
      if line == nil then return end
      if line:find("%S") then
        local okparse, msg = pcall(cjson.decode, line)
        if not okparse then
          stderr:write("herd_worker: cannot parse request: ", tostring(msg), "\n")
        else
          local req = setmetatable({
            id = msg.id, op = msg.op, model = msg.model or "default",
            files = msg.files or {}, uris = msg.uris or msg.files or {}, state_dir = msg.stateDir,
          }, Request)
          local handler = handlers[req.op]
          if type(handler) ~= "function" then
            send({ type = "error", id = req.id, error = "this worker does not implement '" .. tostring(req.op) .. "'" })
          else
            local okcall, result = xpcall(function() return handler(req) end, function(e)
              if is_interrupt(e) then return e end
              return debug.traceback(tostring(e), 2)
            end)
            if not okcall then
              if is_interrupt(result) then
                send({ type = "error", id = req.id, error = "cancelled" })
              else
                stderr:write(tostring(result), "\n")
                send({ type = "error", id = req.id, error = (tostring(result):match("^[^\n]*")) })
              end
            elseif req.op == "output" then
              local okvec, vector = pcall(encode_vector, result or {})
              if okvec then
                -- Written by hand: cjson rounds to 14 digits and encodes {} for an empty list.
                stdout:write('{"type":"done","id":', cjson.encode(req.id), ',"outputVector":', vector, '}\n')
                stdout:flush()
              else
                send({ type = "error", id = req.id, error = vector })
              end
            else
              if result == nil then result = cjson.null end
              send({ type = "done", id = req.id, result = result })
            end
          end
        end
      end
    end
  end
end

return M
