-- wrk script: POST /output with one file, as a client of herd or the 2016 stack would.
wrk.method = "POST"
wrk.body = '{"Files": ["query.txt"], "model": "m"}'
wrk.headers["Content-Type"] = "application/json"
