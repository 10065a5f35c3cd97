# The client for gunicorn_lru.py: RATE requests a second (default 40) to
# http://127.0.0.1:PORT/k<N>, N uniform over twice the cache cap of both workers
# (KEYS, default 8192), over keep-alive-less connections so gunicorn's sync
# workers share them. Loopback only; stops when the server has gone for 60 s.
# Run: python3 lru_client.py PORT [RATE] [KEYS]
import http.client
import random
import sys
import time

port = int(sys.argv[1])
rate = float(sys.argv[2]) if len(sys.argv) > 2 else 40.0
keys = int(sys.argv[3]) if len(sys.argv) > 3 else 8192
rng = random.Random(11)
down_since = None
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/k%d" % rng.randrange(keys))
        c.getresponse().read()
        c.close()
        down_since = None
    except OSError:
        down_since = down_since or time.monotonic()
        if time.monotonic() - down_since > 60:
            sys.exit(0)
    time.sleep(1.0 / rate)
