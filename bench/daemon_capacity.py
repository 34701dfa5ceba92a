#!/usr/bin/env python3
"""daemon_capacity.py [--source rtp-raw|rtp-h264] [--sender videotestsrc|phantom] BUILD MODEL
[N...]: how many 30 fps 800x600 RTP streams echoviewd sustains (CPU backend) with nothing
skipped, dropped or lost.

For each N (default 1 2 3 4 6): N gst-launch senders, each its own process (SENDER 800x600 I420
30 fps ! rtpvrawpay, or ! openh264enc ! rtph264pay for rtp-h264, ! udpsink 127.0.0.1; SENDER is
videotestsrc pattern=ball, or echophantomsrc, the daemon's built-in simulated scanner) and
echoviewd with N streams of that source type; 8 s warm-up, then 20 s measured. Prints one JSON
line per N: per-stream fps (min), dropped, skipped, packets lost in the window, p99 latency, and
the CPU seconds per second of the daemon and of the senders, each read from /proc/PID/stat (the
senders share the same cores: on a 2-core machine they are part of the bill), and per stream.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'common'))
from testlib import free_port  # noqa: E402

args = sys.argv[1:]
source, sender = 'rtp-raw', 'videotestsrc'
while args and args[0].startswith('--'):
    opt = args.pop(0)
    key, _, value = opt.partition('=')
    if not value and args:
        value = args.pop(0)
    if key == '--source' and value in ('rtp-raw', 'rtp-h264'):
        source = value
    elif key == '--sender' and value in ('videotestsrc', 'phantom'):
        sender = value
    else:
        sys.exit('daemon_capacity.py: bad option %r (--source rtp-raw|rtp-h264, '
                 '--sender videotestsrc|phantom)' % opt)
if len(args) < 2:
    sys.exit(__doc__)
build, model = args[0], os.path.abspath(args[1])
counts = [int(a) for a in args[2:]] or [1, 2, 3, 4, 6]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(root, build, 'plugins'))
TICK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    try:
        f = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except OSError:
        return 0.0


def get(port, path):
    with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path), timeout=10) as r:
        return json.loads(r.read())


def run(n):
    http = free_port()
    ports = [free_port(socket.SOCK_DGRAM) for _ in range(n)]
    cfg = ['http: {port: %d}' % http,
           'supervision: {stall-timeout: 3}',
           'classifier: {model-file: %s, backend: cpu, threads: 1}' % model, 'streams:']
    for i, p in enumerate(ports):
        if source == 'rtp-raw':
            cfg.append('  - {id: s%d, source: {type: rtp-raw, port: %d, width: 800, height: 600}}'
                       % (i, p))
        else:
            cfg.append('  - {id: s%d, source: {type: rtp-h264, port: %d}}' % (i, p))
    tmp = tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False)
    tmp.write('\n'.join(cfg) + '\n')
    tmp.close()
    daemon = subprocess.Popen([os.path.join(root, build, 'daemon', 'echoviewd'), '--config',
                               tmp.name], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    if sender == 'phantom':
        head = ['echophantomsrc', 'seed=%d', '!', 'video/x-raw,width=800,height=600,'
                'framerate=30/1', '!', 'videoconvert', '!', 'video/x-raw,format=I420']
    else:
        head = ['videotestsrc', 'is-live=true', 'pattern=ball', '!',
                'video/x-raw,width=800,height=600,format=I420,framerate=30/1']
    if source == 'rtp-raw':
        pay = ['rtpvrawpay']
    else:
        pay = ['openh264enc', 'gop-size=30', '!', 'rtph264pay', 'config-interval=-1']
    senders = [subprocess.Popen(
        ['gst-launch-1.0', '-q'] + [a.replace('%d', str(i + 1)) for a in head] + ['!'] + pay +
        ['!', 'udpsink', 'host=127.0.0.1', 'port=%d' % p], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL) for i, p in enumerate(ports)]
    try:
        time.sleep(8)
        a = get(http, '/api/v1/streams')['streams']
        c0 = cpu_seconds(daemon.pid), sum(cpu_seconds(s.pid) for s in senders)
        t0 = time.monotonic()
        time.sleep(20)
        b = get(http, '/api/v1/streams')['streams']
        dt = time.monotonic() - t0
        c1 = cpu_seconds(daemon.pid), sum(cpu_seconds(s.pid) for s in senders)
        res = {'streams': n, 'source': source, 'sender': sender, 'window_s': round(dt, 1)}
        fps = [(y['frames'] - x['frames']) / dt for x, y in zip(a, b)]
        res['fps_min'] = round(min(fps), 2)
        res['fps_mean'] = round(sum(fps) / n, 2)
        res['dropped'] = sum(y['dropped'] - x['dropped'] for x, y in zip(a, b))
        res['skipped'] = sum(y['skipped'] - x['skipped'] for x, y in zip(a, b))
        res['packets_lost'] = sum(y['packets']['lost'] - x['packets']['lost'] for x, y in zip(a, b))
        res['latency_p99_ms'] = round(max(y['latency_ms']['p99'] for y in b), 2)
        res['states'] = sorted(set(y['state'] for y in b))
        res['daemon_cpu'] = round((c1[0] - c0[0]) / dt, 2)
        res['senders_cpu'] = round((c1[1] - c0[1]) / dt, 2)
        res['daemon_cpu_per_stream'] = round(res['daemon_cpu'] / n, 3)
        res['sender_cpu_per_stream'] = round(res['senders_cpu'] / n, 3)
        res['loadavg'] = os.getloadavg()
        res['sustained'] = (res['fps_min'] >= 29.0 and res['dropped'] == 0
                            and res['skipped'] == 0 and res['packets_lost'] == 0)
        print(json.dumps(res), flush=True)
    finally:
        for s in senders:
            s.terminate()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)
        for s in senders:
            s.wait(10)
        os.unlink(tmp.name)


print(json.dumps({'machine': os.uname().nodename, 'cpus': os.cpu_count(),
                  'loadavg_before': os.getloadavg(), 'model': model}))
for n in counts:
    run(n)
