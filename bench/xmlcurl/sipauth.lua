-- wrk script: POST a REGISTER's sip_auth directory lookup, shaped like the
-- body FreeSWITCH 1.10.12 sent (xmlcurl/testdata/freeswitch-requests/register.txt),
-- for user 10000+n of bench.example.
--
--   wrk -s sipauth.lua URL -- MODE USERS THREADS BASIC_B64 [OFFSET]
--
-- MODE random: a random user per request (warm runs);
--      seq:    every request a user not asked before (cold runs: each
--              thread walks its own residue class from OFFSET on).

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "random"
  users = tonumber(args[2] or "100000")
  nthreads = tonumber(args[3] or "1")
  auth = args[4] or ""
  math.randomseed(os.time() * 1000 + tid * 7919)
  seq = tonumber(args[5] or "0") + tid
  headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["User-Agent"] = "freeswitch-xml/1.0",
    ["Authorization"] = "Basic " .. auth,
  }
end

local d = "bench.example"

local function body(user)
  return "hostname=vm&section=directory&tag_name=domain&key_name=name&key_value=" .. d ..
    "&Event-Name=REQUEST_PARAMS&Core-UUID=4f030381-44f9-4bbd-bf1d-4c50c84a6347&FreeSWITCH-Hostname=vm" ..
    "&FreeSWITCH-Switchname=vm&FreeSWITCH-IPv4=192.0.2.2&FreeSWITCH-IPv6=fd00%3A%3A2" ..
    "&Event-Date-Local=2026-11-22%2018%3A18%3A06&Event-Date-GMT=Sun,%2022%20Nov%202026%2018%3A18%3A06%20GMT" ..
    "&Event-Date-Timestamp=1795371486422668&Event-Calling-File=sofia_reg.c&Event-Calling-Function=sofia_reg_parse_auth" ..
    "&Event-Calling-Line-Number=3124&Event-Sequence=370&action=sip_auth&sip_profile=internal" ..
    "&sip_user_agent=sipsak%200.9.8.1&sip_auth_username=" .. user .. "&sip_auth_realm=" .. d ..
    "&sip_auth_nonce=f4203df3-11bf-4486-842f-e990c4f50909&sip_auth_uri=sip%3A" .. d .. "%3A5090" ..
    "&sip_contact_user=" .. user .. "&sip_contact_host=127.0.0.1&sip_to_user=" .. user .. "&sip_to_host=" .. d ..
    "&sip_to_port=5090&sip_via_protocol=udp&sip_from_user=" .. user .. "&sip_from_host=" .. d ..
    "&sip_from_port=5090&sip_call_id=1609648476%40127.0.0.1&sip_request_host=" .. d ..
    "&sip_request_port=5090&sip_auth_qop=auth&sip_auth_cnonce=3f0f38a4&sip_auth_nc=00000001" ..
    "&sip_auth_response=5d7402cbea6d0c294201bd7c222f5f29&sip_auth_method=REGISTER&client_port=37941" ..
    "&key=id&user=" .. user .. "&domain=" .. d .. "&ip=127.0.0.1"
end

function request()
  local n
  if mode == "seq" then
    n = seq
    seq = seq + nthreads
  else
    n = math.random(0, users - 1)
  end
  return wrk.format("POST", "/api/v1/sip/xml-curl", headers, body(tostring(10000 + n)))
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT requests=%d rps=%.0f p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, summary.requests / secs, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
