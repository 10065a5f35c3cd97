# LEAKING (issue 17). A WSGI app for gunicorn whose every request appends a
# LEAK_BYTES "audit record" (env, default 1748: 1 MiB/min over both workers at
# 10 requests a second) to a module-level list never cleared, in whichever
# worker served it; the records are filled, so their pages are touched. The
# responses are small and nothing else is kept.
# Run: gunicorn -w 2 -b 127.0.0.1:PORT --chdir tests/apps/runtimes gunicorn_leak:app
import os

LEAK = int(os.environ.get("LEAK_BYTES", "1748"))
AUDIT = []


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    AUDIT.append((path.encode() * (LEAK // max(1, len(path)) + 1))[:LEAK])
    body = b"ok %d\n" % len(AUDIT)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
