#!/usr/bin/env python3
"""test_fleet.py: a fleet of echoviewd instances sharing one stream list (suite fleet).

Three echoviewd instances (--instance fleet-I --shard I/3) read one list of six RTP streams;
six RFC 4175 senders send to them on loopback. Checks that each stream runs on exactly one
instance, the one `echoview fleet map` names; that every /metrics sample carries the instance
label; bad shard specs are refused with exit status 2; the environment fallbacks
(ECHOVIEW_SHARD, ECHOVIEW_SHARDS with the pod ordinal of HOSTNAME); and Prometheus scraping the
three with deploy/prometheus/rules.yml: six streams near the source rate, the instance-down
alert firing for a killed instance, its streams back after a restart. With a mosquitto broker:
every view change of the six on MQTT under its owner's topics, a killed instance's last will.

    test_fleet.py ECHOVIEWD PLUGIN_DIR SOURCE_ROOT ECHOVIEW [TEST...]
Every wait is bounded and polled; skips exit 77.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'daemon'))
from evdtest import base_config  # noqa: E402
from evdtest import (SKIP, Daemon, RtpRawSender, drop_instance, free_port, run_main,  # noqa: E402
                     wait_until)
from mqtttest import Broker, Events, Subscriber, have_mosquitto, metric_value  # noqa: E402

ECHOVIEW = None
SHARDS = 3
FPS = 10
STREAMS = ['cart-%d' % i for i in range(1, 7)]

BASE = base_config(http='  address: 127.0.0.1\n', stall_timeout=2)


def stream_ports():
    """A distinct free UDP port per stream (free_port reserves nothing: two calls may agree)."""
    ports = {}
    while len(set(ports.values())) < len(STREAMS):
        ports = {}
        for sid in STREAMS:
            ports[sid] = free_port(socket.SOCK_DGRAM)
    return ports


def fleet_config(ports):
    text = BASE + 'streams:\n'
    for sid in STREAMS:
        text += ('  - id: %s\n    source: {type: rtp-raw, address: 127.0.0.1, port: %d, '
                 'width: 64, height: 48, sampling: RGB, jitter-latency: 20}\n'
                 % (sid, ports[sid]))
    return text


def fleet_map(env, config_path, shards=SHARDS):
    r = subprocess.run([ECHOVIEW, 'fleet', 'map', '--config', config_path, '--shards',
                        str(shards), '--host', 'fleet-{i}', '--format', 'json'],
                       capture_output=True, text=True, timeout=30, env=env.env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc['shards'] == shards and len(doc['streams']) == len(STREAMS), doc
    return {row['stream']: row for row in doc['streams']}


def stream_ids(d):
    return sorted(s['id'] for s in d.json('/api/v1/streams')['streams'])


class Fleet:
    """The three instances and the six senders."""

    def __init__(self, env, extra=''):
        self.env = env
        self.ports = stream_ports()
        self.config = fleet_config(self.ports).replace('streams:\n', extra + 'streams:\n', 1)
        self.daemons = [None] * SHARDS
        self.senders = [RtpRawSender(self.ports[sid], fps=FPS) for sid in STREAMS]
        try:
            for i in range(SHARDS):
                self.start(i)
            self.map = fleet_map(env, self.daemons[0].config)
        except BaseException:
            self.stop()
            raise

    def start(self, i, port=None):
        self.daemons[i] = Daemon(self.env, self.config, instance='fleet-%d' % i,
                                 args=['--shard', '%d/%d' % (i, SHARDS)], port=port)

    def owned(self, i):
        return sorted(sid for sid, row in self.map.items() if row['shard'] == i)

    def wait_running(self, i, timeout=40):
        for sid in self.owned(i):
            self.daemons[i].wait_state(sid, 'running', timeout)

    def stop(self):
        for s in self.senders:
            s.stop()
        for d in self.daemons:
            if d:
                d.stop()


def test_shards(env):
    """Each of six streams runs on exactly one of three instances, the one fleet map names, at
    the source rate; every metric sample carries the instance label."""
    fleet = Fleet(env)
    try:
        owners = {}
        for i in range(SHARDS):
            ids = stream_ids(fleet.daemons[i])
            assert ids == fleet.owned(i), (i, ids, fleet.owned(i))
            for sid in ids:
                owners.setdefault(sid, []).append(i)
        assert sorted(owners) == STREAMS and all(len(v) == 1 for v in owners.values()), owners
        assert all(fleet.owned(i) for i in range(SHARDS)), 'a shard without streams: %r' % owners
        for sid, row in fleet.map.items():
            assert row['instance'] == 'fleet-%d' % row['shard'], row
            assert row['destination'] == '127.0.0.1:%d' % fleet.ports[sid], row
            assert row['source'] == 'rtp-raw', row
        for i in range(SHARDS):
            fleet.wait_running(i)
            d = fleet.daemons[i]
            for sid in fleet.owned(i):
                st = wait_until(lambda: (lambda s: s if s['fps'] > FPS * 0.5 else None)(
                    d.stream(sid)), 30, interval=0.5, what='%s near %d fps' % (sid, FPS))
                assert st['fps'] < FPS * 1.5, st
            other = [sid for sid in STREAMS if sid not in fleet.owned(i)]
            assert all(d.get('/api/v1/streams/' + sid)[0] == 404 for sid in other), other
            text = drop_instance(d.get('/metrics')[2].decode(), 'fleet-%d' % i)
            for sid in fleet.owned(i):
                assert 'echoviewd_stream_up{stream="%s"} 1' % sid in text, sid
            assert 'echoviewd_build_info{version=' in text
        # the text form names the same owners
        r = subprocess.run([ECHOVIEW, 'fleet', 'map', '--config', fleet.daemons[0].config,
                            '--shards', str(SHARDS)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        rows = [line.split() for line in r.stdout.strip().split('\n')[1:]]
        assert {row[0]: int(row[1]) for row in rows} == {s: v['shard'] for s, v in
                                                         fleet.map.items()}, r.stdout
        assert all(row[2] == 'echoviewd-%s' % row[1] for row in rows), r.stdout
    finally:
        fleet.stop()


def run_refused(env, args, extra_env=None):
    """echoviewd with args must exit with status 2 before it opens anything."""
    tmp = tempfile.TemporaryDirectory(prefix='echoviewd-fleet-')
    config = os.path.join(tmp.name, 'echoviewd.yaml')
    with open(config, 'w') as f:
        f.write(BASE.replace('@HTTP_PORT@', str(free_port())).replace('@MODEL@', env.model)
                + 'streams: []\n')
    run_env = dict(env.env)
    for k in ('ECHOVIEW_INSTANCE', 'ECHOVIEW_SHARD', 'ECHOVIEW_SHARDS'):
        run_env.pop(k, None)
    run_env.update(extra_env or {})
    r = subprocess.run([env.echoviewd, '--config', config] + args, env=run_env,
                       capture_output=True, text=True, timeout=30)
    tmp.cleanup()
    return r.returncode, r.stderr


def test_bad_shards(env):
    """Bad shard specs, instance names and pod names are refused with status 2 and a reason;
    the environment fallbacks select the same shard as the flag."""
    cases = [
        (['--shard', '3/2'], None, "--shard: shard spec '3/2': index 3 is not below the shard "
                                   "count 2"),
        (['--shard', '0/0'], None, "--shard: shard spec '0/0': N must be 1..4096"),
        (['--shard', 'a/b'], None, "--shard: shard spec 'a/b' is not I/N"),
        (['--shard', '1/'], None, "--shard: shard spec '1/' is not I/N"),
        (['--shard', ''], None, '--shard: empty shard spec'),
        (['--instance', 'a b'], None, "instance name 'a b' must be"),
        (['--instance', 'x/y'], None, "instance name 'x/y' must be"),
        ([], {'ECHOVIEW_SHARD': '5/3'}, "ECHOVIEW_SHARD: shard spec '5/3'"),
        ([], {'ECHOVIEW_SHARDS': '3', 'HOSTNAME': 'scanner-host'},
         "ECHOVIEW_SHARDS is set but host name 'scanner-host' has no StatefulSet ordinal"),
        ([], {'ECHOVIEW_SHARDS': '3', 'HOSTNAME': 'echoviewd-7'},
         "ECHOVIEW_SHARDS=3 with the ordinal 7 of host name 'echoviewd-7'"),
        ([], {'ECHOVIEW_SHARDS': 'x', 'HOSTNAME': 'echoviewd-1'}, "is not I/N"),
    ]
    for args, extra, needle in cases:
        rc, err = run_refused(env, args, extra)
        assert rc == 2 and needle in err, (args, extra, rc, err)
    # fleet map's own usage errors
    for args, rc_want, needle in ((['--shards', '0'], 2, '--shards'),
                                  (['--shards', '3'], 2, '--config FILE and --shards N'),
                                  (['--config', '/nonexistent.yaml', '--shards', '3'], 1,
                                   '/nonexistent.yaml')):
        r = subprocess.run([ECHOVIEW, 'fleet', 'map'] + args, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == rc_want and needle in r.stderr, (args, r.returncode, r.stderr)
    # the environment: ECHOVIEW_SHARDS with the pod ordinal, ECHOVIEW_SHARD, ECHOVIEW_INSTANCE
    ports = stream_ports()
    config = fleet_config(ports)
    for extra in ({'ECHOVIEW_SHARDS': '3', 'HOSTNAME': 'echoviewd-1',
                   'ECHOVIEW_INSTANCE': 'pod-1'},
                  {'ECHOVIEW_SHARD': '1/3', 'ECHOVIEW_INSTANCE': 'pod-1'}):
        d = Daemon(env, config, instance=None, extra_env=extra)
        try:
            want = sorted(s for s, row in fleet_map(env, d.config).items() if row['shard'] == 1)
            assert stream_ids(d) == want, (extra, stream_ids(d), want)
            drop_instance(d.get('/metrics')[2].decode(), 'pod-1')
        finally:
            d.stop()


class Prometheus:
    """prometheus scraping the fleet every second, with deploy/prometheus/rules.yml (its
    instance-down `for` shortened to 2 s so the test need not wait a minute)."""

    def __init__(self, env, fleet):
        self.dir = tempfile.TemporaryDirectory(prefix='echoview-prometheus-')
        rules_src = os.path.join(env.source_root, 'deploy', 'prometheus', 'rules.yml')
        with open(rules_src) as f:
            rules = f.read()
        down = '      - alert: EchoviewdInstanceDown\n        expr: up{job="echoviewd"} == 0\n' \
               '        for: 1m\n'
        assert down in rules, 'rules.yml changed: update the test'
        rules = rules.replace(down, down.replace('for: 1m', 'for: 2s'))
        with open(os.path.join(self.dir.name, 'rules.yml'), 'w') as f:
            f.write(rules)
        groups = ''.join("      - targets: ['127.0.0.1:%d']\n        labels: {instance: fleet-%d}\n"
                         % (d.port, i) for i, d in enumerate(fleet.daemons))
        with open(os.path.join(self.dir.name, 'prometheus.yml'), 'w') as f:
            f.write('global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n'
                    'rule_files: [rules.yml]\n'
                    'scrape_configs:\n  - job_name: echoviewd\n    honor_labels: true\n'
                    '    static_configs:\n' + groups)
        self.port = free_port()
        self.log = open(os.path.join(self.dir.name, 'log'), 'w+')
        self.proc = subprocess.Popen(
            ['prometheus', '--config.file=' + os.path.join(self.dir.name, 'prometheus.yml'),
             '--storage.tsdb.path=' + os.path.join(self.dir.name, 'data'),
             '--web.listen-address=127.0.0.1:%d' % self.port, '--log.level=warn'],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self.get('/-/ready') is not None, 60, interval=0.5,
                       what='prometheus ready')
        except AssertionError:
            self.stop()
            raise

    def get(self, path):
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (self.port, path), timeout=5) as r:
            return r.read()

    def query(self, q):
        doc = json.loads(self.get('/api/v1/query?query=' + urllib.parse.quote(q)))
        assert doc['status'] == 'success', doc
        return doc['data']['result']

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        self.dir.cleanup()
        return text


def test_prometheus(env):
    """Prometheus over the fleet: six streams near the source rate with the right instance
    labels; a killed instance fires EchoviewdInstanceDown; a restart brings its streams back."""
    if not shutil.which('prometheus'):
        print('prometheus not found')
        return SKIP
    fleet = Fleet(env)
    prom = None
    try:
        for i in range(SHARDS):
            fleet.wait_running(i)
        prom = Prometheus(env, fleet)

        def six_near_rate():
            res = prom.query('echoviewd_stream_frames_per_second{job="echoviewd"}')
            got = {r['metric']['stream']: (r['metric']['instance'], float(r['value'][1]))
                   for r in res}
            if sorted(got) != STREAMS or len(res) != 6:
                return None
            if not all(FPS * 0.5 < fps < FPS * 1.5 for _, fps in got.values()):
                return None
            return got
        got = wait_until(six_near_rate, 60, interval=1, what='six streams near %d fps' % FPS)
        for sid, (instance, _) in got.items():
            assert instance == 'fleet-%d' % fleet.map[sid]['shard'], (sid, instance)
        # kill one instance (no clean shutdown): the alert fires for it, and only for it
        victim = next(i for i in range(SHARDS) if fleet.owned(i))
        port = fleet.daemons[victim].port
        fleet.daemons[victim].proc.kill()
        fleet.daemons[victim].stop(check=False)
        fleet.daemons[victim] = None

        def firing():
            res = prom.query('ALERTS{alertname="EchoviewdInstanceDown",alertstate="firing"}')
            return [r['metric']['instance'] for r in res] or None
        assert wait_until(firing, 60, interval=1, what='instance-down firing') == \
            ['fleet-%d' % victim]
        # restart: its streams come back, in Prometheus too
        fleet.start(victim, port=port)   # the port Prometheus scrapes
        fleet.wait_running(victim)
        wait_until(lambda: (lambda g: g and all(g[s][0] == 'fleet-%d' % victim
                                                for s in fleet.owned(victim)))(six_near_rate()),
                   60, interval=1, what='the restarted instance\'s streams in prometheus')
        wait_until(lambda: not prom.query('ALERTS{alertname="EchoviewdInstanceDown",'
                                          'alertstate="firing"}'), 60, interval=1,
                   what='instance-down resolved')
    finally:
        if prom:
            log = prom.stop()
            if log.strip():
                print('--- prometheus log ---\n' + log[-3000:])
        fleet.stop()


def test_mqtt(env):
    """The fleet on one mosquitto broker: a subscriber sees every view change of all six streams
    under the owner's instance topic with the right labels; a killed instance's last will;
    restarted, it is online again with its streams running; the broker stopped for 10 s: no
    event lost (they fit the queue), none dropped."""
    if not have_mosquitto():
        return SKIP
    broker = Broker(persistence=True)
    sub = Subscriber(broker, client_id='fleet-subscriber')   # its session survives a restart
    fleet = None
    events = []
    try:
        fleet = Fleet(env, 'mqtt: {broker: "mqtt://127.0.0.1:%d", reconnect-delay: 0.2, '
                      'reconnect-delay-max: 1}\n' % broker.port)
        for i in range(SHARDS):
            fleet.wait_running(i)
        owner = {sid: 'fleet-%d' % fleet.map[sid]['shard'] for sid in STREAMS}
        for i in range(SHARDS):
            sub.wait(lambda _: sub.topic('echoview/fleet-%d/status' % i) == ['online'], 20,
                     'fleet-%d online' % i)

        def views(sid):
            return [v['view'] for _, t, v in sub.copy()
                    if t == 'echoview/%s/%s/events/view' % (owner[sid], sid)]
        for sid in STREAMS:
            d = fleet.daemons[int(owner[sid].split('-')[1])]
            wait_until(lambda: d.stream(sid)['view']['stable_label'] == 'A4CH-LV', 20,
                       what='%s white' % sid)
        start = {sid: len(views(sid)) for sid in STREAMS}
        for colour, label in (((0, 0, 0), 'PLAX-TV'), ((255, 255, 255), 'A4CH-LV')):
            for sender in fleet.senders:
                sender.colour = colour
            for sid in STREAMS:
                d = fleet.daemons[int(owner[sid].split('-')[1])]
                wait_until(lambda: d.stream(sid)['view']['stable_label'] == label, 20,
                           what='%s %s' % (sid, label))
        for sid in STREAMS:
            sub.wait(lambda _: views(sid)[start[sid]:] == ['PLAX-TV', 'A4CH-LV'], 15,
                     'both view changes of %s under %s' % (sid, owner[sid]))
        # nothing of a stream under another instance's topics
        for _, t, v in sub.copy():
            parts = t.split('/')
            if len(parts) >= 4 and parts[2] in STREAMS:
                assert parts[1] == owner[parts[2]], t
                if isinstance(v, dict):
                    assert v.get('stream', v.get('id')) == parts[2], (t, v)
        # kill -9 one instance: its last will; restarted: online, its streams running
        victim = next(i for i in range(SHARDS) if fleet.owned(i))
        name = 'fleet-%d' % victim
        fleet.daemons[victim].proc.kill()
        fleet.daemons[victim].stop(check=False)
        fleet.daemons[victim] = None
        sub.wait(lambda _: sub.topic('echoview/%s/status' % name) == ['online', 'offline'], 20,
                 '%s last will' % name)
        assert all(sub.topic('echoview/fleet-%d/status' % i) == ['online']
                   for i in range(SHARDS) if i != victim)
        seen = len(sub.copy())
        fleet.start(victim)
        fleet.wait_running(victim)
        sub.wait(lambda _: sub.topic('echoview/%s/status' % name)[-1:] == ['online'], 20,
                 '%s online again' % name)
        for sid in fleet.owned(victim):
            sub.wait(lambda m: any(t == 'echoview/%s/%s/state' % (name, sid) and
                                   v['state'] == 'running' for _, t, v in m[seen:]), 20,
                     '%s running again on MQTT' % sid)
        # the broker stopped for 10 s while every stream changes view every 1.5 s: once it is
        # back, every event each instance sent (its /api/v1/events) is on MQTT, none dropped
        events = [Events(d) for d in fleet.daemons]
        time.sleep(0.5)
        toggling = threading.Event()

        def toggle():
            while not toggling.wait(1.5):
                for sender in fleet.senders:
                    sender.colour = (0, 0, 0) if sender.colour == (255, 255, 255) else \
                        (255, 255, 255)
        toggler = threading.Thread(target=toggle, daemon=True)
        toggler.start()
        broker.stop()
        for d in fleet.daemons:
            wait_until(lambda: metric_value(d, 'echoviewd_mqtt_connected') == 0, 10,
                       what='%s disconnected' % d.instance)
        before = sum(len(e.copy()) for e in events)
        time.sleep(10)
        toggling.set()
        toggler.join(5)
        during = sum(len(e.copy()) for e in events) - before
        assert during >= 6, during
        broker.start()
        for d in fleet.daemons:
            wait_until(lambda: metric_value(d, 'echoviewd_mqtt_connected') == 1, 30,
                       what='%s reconnected' % d.instance)
            wait_until(lambda: metric_value(d, 'echoviewd_mqtt_queue_messages') == 0, 30,
                       what='%s queue drained' % d.instance)
            assert metric_value(d, 'echoviewd_mqtt_queue_dropped_total') == 0, d.instance

        def missing(_):
            got = set()
            for _, t, v in sub.copy():
                parts = t.split('/')
                if len(parts) == 5 and parts[3] == 'events':
                    got.add((parts[1], parts[4], json.dumps(v, sort_keys=True)))
            want = {(d.instance, ev, json.dumps(data, sort_keys=True))
                    for d, e in zip(fleet.daemons, events) for ev, data in e.copy()}
            return not (want - got)
        sub.wait(missing, 30, 'every event of the outage on MQTT')
    finally:
        for e in events:
            e.stop()
        if fleet:
            fleet.stop()
        sub.stop()
        broker.close()


TESTS = {
    'shards': test_shards,
    'mqtt': test_mqtt,
    'bad-shards': test_bad_shards,
    'prometheus': test_prometheus,
}

if __name__ == '__main__':
    argv = list(sys.argv)
    ECHOVIEW = os.path.abspath(argv.pop(4))
    sys.exit(run_main(TESTS, argv))
