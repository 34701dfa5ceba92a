#!/usr/bin/env python3
"""bench_wrk.py ECHOVIEWD PLUGIN_DIR SOURCE_ROOT [SECONDS]: requests/s of GET /api/v1/streams
with wrk (1 thread, 8 connections), keep-alive against one connection per request
(`Connection: close`, what every response was before keep-alive worked), on a daemon with an
RTP stream and a phantom stream. Not a test: prints wrk's summary lines (docs/PERFORMANCE.md)."""
import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_daemon as T  # noqa: E402
from evdtest import Env, Daemon, RtpRawSender, free_port  # noqa: E402

if not shutil.which('wrk'):
    sys.exit('wrk not found (apt install wrk)')
seconds = sys.argv[4] if len(sys.argv) > 4 else '10'
env = Env(sys.argv[:4])
port = free_port(socket.SOCK_DGRAM)
sender = RtpRawSender(port)
config = T.BASE.replace('  connection-timeout: 2\n', '  connection-timeout: 30\n')
d = Daemon(env, config + 'streams:\n' + T.rtp_stream('cart', port) + T.phantom_stream('local'))
try:
    d.wait_state('cart', 'running', 20)
    url = 'http://127.0.0.1:%d/api/v1/streams' % d.port
    for name, extra in (('keep-alive', []), ('Connection: close', ['-H', 'Connection: close'])):
        r = subprocess.run(['wrk', '-t1', '-c8', '-d%ss' % seconds] + extra + [url],
                           capture_output=True, text=True, check=True)
        lines = [l.strip() for l in r.stdout.split('\n')
                 if l.strip().startswith(('Latency', 'Requests/sec', 'Non-2xx', 'Socket'))
                 or 'requests in' in l]
        print('%s: %s' % (name, '; '.join(lines)))
finally:
    sender.stop()
    d.stop()
