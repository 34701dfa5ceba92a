#!/usr/bin/env python3
"""mqtt_cpu.py BUILD MODEL [STREAMS] [ROUNDS] [STATE_INTERVAL]: the CPU cost of echoviewd's MQTT
output (docs/MQTT.md) per stream.

A mosquitto broker on a free loopback port with one subscriber (mosquitto_sub on echoview/#,
so that every message is delivered), then ROUNDS (default 3) pairs of runs of echoviewd with
STREAMS (default 6) phantom streams of 160x120 at 30 fps, classified on every frame (CPU
backend, 1 thread): once without the mqtt section, once with it (state every STATE_INTERVAL s,
default 1; events QoS 1), alternating so that the machine's load hits both alike. Each run:
8 s warm-up, 30 s measured. Prints one JSON line per run (daemon CPU seconds per second from
/proc/PID/stat, the evd-mqtt thread's own from /proc/PID/task/TID/schedstat, the broker's, the
messages published) and a summary: the mean difference on - off per stream, in % of a core.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests',
                                'common'))
from testlib import free_port  # noqa: E402

if len(sys.argv) < 3:
    sys.exit(__doc__)
build, model = sys.argv[1], os.path.abspath(sys.argv[2])
streams = int(sys.argv[3]) if len(sys.argv) > 3 else 6
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
interval = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
env = dict(os.environ, GST_PLUGIN_PATH=os.path.join(root, build, 'plugins'))
TICK = os.sysconf('SC_CLK_TCK')
WARMUP, WINDOW = 8, 30


def stat_cpu(path):
    try:
        f = open(path).read().rsplit(')', 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except OSError:
        return 0.0


def mqtt_thread(pid):
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            if open('/proc/%d/task/%s/comm' % (pid, tid)).read().strip() == 'evd-mqtt':
                return '/proc/%d/task/%s/schedstat' % (pid, tid)
        except OSError:
            pass
    return None


def thread_cpu(path):
    """Seconds on a CPU (schedstat: nanoseconds, finer than stat's clock ticks)."""
    try:
        return int(open(path).read().split()[0]) / 1e9
    except OSError:
        return 0.0


def metrics(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.split('\n'):
        if line.startswith('echoviewd_mqtt_published_total') or \
                line.startswith('echoviewd_mqtt_queue_dropped_total'):
            out[line.split('{')[0]] = float(line.rsplit(' ', 1)[1])
    return out


def fps(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/api/v1/streams' % port, timeout=10) as r:
        return [s['fps'] for s in json.loads(r.read())['streams']]


def run(broker_port, mqtt, tmp):
    http = free_port()
    cfg = ['http: {port: %d}' % http, 'supervision: {stall-timeout: 3}',
           'classifier: {model-file: %s, backend: cpu, threads: 1}' % model]
    if mqtt:
        cfg.append('mqtt: {broker: "mqtt://127.0.0.1:%d", state-interval: %s}'
                   % (broker_port, interval))
    cfg.append('streams:')
    for i in range(streams):
        cfg.append('  - {id: s%d, source: {type: phantom, width: 160, height: 120, '
                   'framerate: 30}}' % i)
    path = os.path.join(tmp, 'echoviewd.yaml')
    with open(path, 'w') as f:
        f.write('\n'.join(cfg) + '\n')
    daemon = subprocess.Popen([os.path.join(root, build, 'daemon', 'echoviewd'), '--config',
                               path, '--instance', 'bench'], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(WARMUP)
        thread = mqtt_thread(daemon.pid) if mqtt else None
        m0 = metrics(http) if mqtt else {}
        c0, t0 = stat_cpu('/proc/%d/stat' % daemon.pid), time.monotonic()
        th0 = thread_cpu(thread) if thread else 0.0
        b0 = stat_cpu('/proc/%d/stat' % broker.pid)
        time.sleep(WINDOW)
        c1, t1 = stat_cpu('/proc/%d/stat' % daemon.pid), time.monotonic()
        th1 = thread_cpu(thread) if thread else 0.0
        b1 = stat_cpu('/proc/%d/stat' % broker.pid)
        m1 = metrics(http) if mqtt else {}
        rates = fps(http)
        dt = t1 - t0
        return {'mqtt': mqtt, 'streams': streams, 'fps_min': min(rates),
                'daemon_cpu': round((c1 - c0) / dt, 4),
                'mqtt_thread_cpu': round((th1 - th0) / dt, 5) if mqtt else None,
                'broker_cpu': round((b1 - b0) / dt, 5),
                'published_per_s': round((m1.get('echoviewd_mqtt_published_total', 0) -
                                          m0.get('echoviewd_mqtt_published_total', 0)) / dt, 2)
                if mqtt else None,
                'dropped': m1.get('echoviewd_mqtt_queue_dropped_total') if mqtt else None,
                'load1': round(os.getloadavg()[0], 2)}
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)


tmp = tempfile.mkdtemp(prefix='evd-mqtt-bench-')
broker_port = free_port()
import getpass  # noqa: E402
with open(os.path.join(tmp, 'mosquitto.conf'), 'w') as f:
    f.write('listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nuser %s\n'
            % (broker_port, getpass.getuser()))
broker = subprocess.Popen([shutil.which('mosquitto') or '/usr/sbin/mosquitto', '-c',
                           os.path.join(tmp, 'mosquitto.conf')], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
time.sleep(1)
sub = subprocess.Popen(['mosquitto_sub', '-p', str(broker_port), '-t', 'echoview/#'],
                       stdout=subprocess.DEVNULL)
results = []
try:
    for r in range(rounds):
        for mqtt in (False, True):
            res = run(broker_port, mqtt, tmp)
            print(json.dumps(res), flush=True)
            results.append(res)
finally:
    sub.terminate()
    broker.terminate()
    broker.wait(10)
    shutil.rmtree(tmp)
off = [r['daemon_cpu'] for r in results if not r['mqtt']]
on = [r['daemon_cpu'] for r in results if r['mqtt']]
diffs = [b - a for a, b in zip(off, on)]
threads = [r['mqtt_thread_cpu'] for r in results if r['mqtt']]
brokers = [r['broker_cpu'] for r in results if r['mqtt']]
print(json.dumps({
    'summary': True, 'streams': streams, 'state_interval_s': interval,
    'daemon_cpu_off_mean': round(statistics.mean(off), 4),
    'daemon_cpu_on_mean': round(statistics.mean(on), 4),
    'on_minus_off_per_stream_pct_of_core': round(100 * statistics.mean(diffs) / streams, 3),
    'on_minus_off_per_stream_pct_stdev': round(100 * statistics.stdev(diffs) / streams, 3)
    if len(diffs) > 1 else None,
    'mqtt_thread_per_stream_pct_of_core': round(100 * statistics.mean(threads) / streams, 4),
    'broker_per_stream_pct_of_core': round(100 * statistics.mean(brokers) / streams, 4)}))
