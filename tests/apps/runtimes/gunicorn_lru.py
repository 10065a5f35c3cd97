# NOT leaking (issue 17). A WSGI app for gunicorn with two workers: each worker
# keeps a functools.lru_cache of 16 KiB responses capped at CAP entries (env
# LRU_CAP, default 2048: 32 MiB a worker), keyed by the request's path. A client
# (scripts/record_runtimes.sh starts one) asks for paths drawn from twice the
# cap, so each worker's cache fills at a falling rate of new keys and then evicts.
# Run: gunicorn -w 2 -b 127.0.0.1:PORT --chdir tests/apps/runtimes gunicorn_lru:app
import functools
import os

CAP = int(os.environ.get("LRU_CAP", "2048"))


@functools.lru_cache(maxsize=CAP)
def render(key):
    return (key.encode() * (16384 // max(1, len(key)) + 1))[:16384]


def app(environ, start_response):
    body = render(environ.get("PATH_INFO", "/"))
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]
