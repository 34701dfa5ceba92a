#!/usr/bin/env python3
"""test_mqtt.py ECHOVIEWD PLUGIN_DIR SOURCE_ROOT [TEST...]: echoviewd's MQTT output (suite
daemon; docs/MQTT.md).

Each test starts a mosquitto broker on a free loopback port, echoviewd with an RTP stream whose
sender switches between white and black frames (two views of the fixture model), and
mosquitto_sub. Checks: the event topics carry the same JSON as /api/v1/events, every view
change; the retained state and status topics; the last will on kill -9; a broker stopped for
10 s loses no QoS 1 event that fits the queue, and with a small queue the drops are counted;
hostile brokers (refused port, wrong password, one that drops the connection before and after
CONNACK) and bad `mqtt:` sections; the stream keeps running throughout.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evdtest import (SKIP, Daemon, RtpRawSender, free_port, run_main, self_signed,  # noqa: E402
                     wait_until)
from mqtttest import (Broker, DropServer, Events, Subscriber, metric_value,  # noqa: E402
                      mqtt_section, require_mosquitto)
from test_daemon import BASE, check_config, rtp_stream  # noqa: E402

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
VIEWS = {WHITE: 'A4CH-LV', BLACK: 'PLAX-TV'}
PREFIX = 'echoview/%s' % Daemon.INSTANCE


class Toggler:
    """Switches the sender between white and black every period seconds (a view change each)."""

    def __init__(self, sender, period=1.5):
        self.sender, self.period = sender, period
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.wait(self.period):
            self.sender.colour = BLACK if self.sender.colour == WHITE else WHITE

    def stop(self):
        self.stopping.set()
        self.thread.join(5)


def config(broker_port, sender_port, extra='', delays=(0.2, 1)):
    return BASE + mqtt_section(broker_port, extra, delays) + 'streams:\n' + rtp_stream('cart',
                                                                               sender_port)


def mqtt_events(sub, stream='cart'):
    """[(event, data)] of the stream's event topics, in arrival order."""
    head = '%s/%s/events/' % (PREFIX, stream)
    return [(t[len(head):], v) for _, t, v in sub.copy() if t.startswith(head)]


def wait_view(d, colour, timeout=15):
    wait_until(lambda: d.stream('cart')['view']['stable_label'] == VIEWS[colour], timeout,
               what='cart classified %s' % VIEWS[colour])


def assert_running(d, frames_before=None):
    s = d.stream('cart')
    assert s['state'] == 'running', s['state']
    if frames_before is not None:
        assert s['frames'] > frames_before, (s['frames'], frames_before)
    return s['frames']


def test_publish(env):
    """Every view change on the event topic, the same JSON as /api/v1/events; the retained
    state and status; no view for a stream that is not running; `offline` on SIGTERM."""
    broker = Broker()
    sub = Subscriber(broker)
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port, colour=WHITE)
    d = Daemon(env, config(broker.port, port))
    events = None
    try:
        d.wait_state('cart', 'running', 20)
        wait_view(d, WHITE)
        events = Events(d)
        time.sleep(0.5)  # the event stream is open (its hello is not counted)
        for colour in (BLACK, WHITE, BLACK, WHITE):
            sender.colour = colour
            wait_view(d, colour)
        # a stall: the view is withheld (view `unknown`), then given back
        sender.paused = True
        d.wait_state('cart', 'stalled', 15)
        sender.paused = False
        d.wait_state('cart', 'running', 15)
        sse = events.copy()
        assert sum(1 for e, _ in sse if e == 'view') >= 6, sse
        # every SSE event of the stream arrives on its MQTT topic with the same JSON
        sub.wait(lambda _: all(x in mqtt_events(sub) for x in sse), 15,
                 'every /api/v1/events event on MQTT')
        # in the same order, with the labels the API showed
        sse_views = [data for e, data in sse if e == 'view']
        mqtt_views = [data for e, data in mqtt_events(sub) if e == 'view']
        assert mqtt_views[-len(sse_views):] == sse_views, (mqtt_views, sse_views)
        labels = [v['view'] for v in sse_views]
        assert labels[:4] == ['PLAX-TV', 'A4CH-LV', 'PLAX-TV', 'A4CH-LV'], labels
        assert 'unknown' in labels and labels[-1] == 'A4CH-LV', labels   # withheld, given back
        assert any(e == 'state' and data['state'] == 'stalled' for e, data in mqtt_events(sub))
        assert any(e == 'error' for e, _ in mqtt_events(sub)), mqtt_events(sub)
        # the state topic: the API's stream JSON plus instance and time, never a view while
        # the stream is not running
        states = sub.topic(PREFIX + '/cart/state')
        assert states, sub.copy()[:5]
        for s in states:
            assert s['id'] == 'cart' and s['instance'] == Daemon.INSTANCE, s
            assert set(s) >= {'state', 'view', 'fps', 'model', 'state_since', 'time'}, s
            if s['state'] != 'running':
                assert s['view']['stable_label'] in (None, 'unknown'), s
                assert s['view']['confidence'] == 0 and s['view']['probabilities'] == {}, s
                assert s['view']['withheld'], s
        assert any(s['state'] == 'running' and s['view']['stable_label'] in VIEWS.values()
                   for s in states), states
        # a late subscriber gets the retained status and state at once
        late = Subscriber(broker, topic=PREFIX + '/#', count=2)
        late.wait(lambda m: len(m) >= 2, 10, 'retained messages')
        late.stop()
        retained = {t: v for r, t, v in late.copy() if r}
        assert retained.get(PREFIX + '/status') == 'online', late.copy()
        assert retained[PREFIX + '/cart/state']['state'] == 'running', retained
        assert metric_value(d, 'echoviewd_mqtt_connected') == 1
        assert metric_value(d, 'echoviewd_mqtt_published_total') >= len(sse)
        assert metric_value(d, 'echoviewd_mqtt_queue_dropped_total') == 0
        events.stop()
        events = None
        d.stop()
        sub.wait(lambda _: sub.topic(PREFIX + '/status')[-1:] == ['offline'], 10,
                 'offline status at stop')
    finally:
        if events:
            events.stop()
        sender.stop()
        if d.alive():
            d.stop(check=False)
        sub.stop()
        broker.close()


def test_last_will(env):
    """kill -9: the broker publishes the last will, `offline` (retained)."""
    broker = Broker()
    sub = Subscriber(broker)
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port, colour=WHITE)
    d = Daemon(env, config(broker.port, port))
    try:
        d.wait_state('cart', 'running', 20)
        sub.wait(lambda _: sub.topic(PREFIX + '/status') == ['online'], 10, 'online')
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        sub.wait(lambda _: sub.topic(PREFIX + '/status') == ['online', 'offline'], 20,
                 'the last will')
        late = Subscriber(broker, topic=PREFIX + '/status', count=1)
        late.wait(lambda m: m, 10, 'retained status')
        late.stop()
        assert late.copy() == [(True, PREFIX + '/status', 'offline')], late.copy()
    finally:
        sender.stop()
        d.stop(check=False)
        sub.stop()
        broker.close()


def outage(env, queue_size, seconds=10):
    """View changes every 1.5 s while the broker is stopped for seconds; returns the SSE
    events of the stream, what a persistent subscriber got, and the daemon's counters."""
    broker = Broker(persistence=True)
    sub = Subscriber(broker, client_id='evd-test-sub')
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port, colour=WHITE)
    d = Daemon(env, config(broker.port, port, '  queue-size: %d\n' % queue_size))
    events = toggler = None
    try:
        d.wait_state('cart', 'running', 20)
        wait_view(d, WHITE)
        sub.wait(lambda _: sub.topic(PREFIX + '/status') == ['online'], 10, 'online')
        events = Events(d)
        time.sleep(0.5)
        toggler = Toggler(sender)
        wait_until(lambda: sum(1 for e, _ in events.copy() if e == 'view') >= 2, 20,
                   what='view changes before the outage')
        broker.stop()
        wait_until(lambda: metric_value(d, 'echoviewd_mqtt_connected') == 0, 10,
                   what='connection lost')
        before = len(events.copy())
        frames = assert_running(d)
        time.sleep(seconds)
        during = events.copy()[before:]
        assert sum(1 for e, _ in during if e == 'view') >= 3, during
        frames = assert_running(d, frames)   # classified all along
        toggler.stop()
        toggler = None
        broker.start()
        wait_until(lambda: metric_value(d, 'echoviewd_mqtt_connected') == 1, 30,
                   what='reconnected')
        wait_until(lambda: metric_value(d, 'echoviewd_mqtt_queue_messages') == 0, 30,
                   what='queue drained')
        assert metric_value(d, 'echoviewd_mqtt_reconnects_total') >= 1
        assert_running(d, frames)
        sse = events.copy()
        # the subscriber's session survived the restart (persistence): it gets what the
        # broker took; wait until the newest event is there
        sub.wait(lambda _: sse[-1] in mqtt_events(sub), 30, 'the newest event on MQTT')
        dropped = metric_value(d, 'echoviewd_mqtt_queue_dropped_total')
        assert 'mqtt: connection to mqtt://127.0.0.1:%d lost' % broker.port in d.log_text()
        return sse, during, mqtt_events(sub), dropped
    finally:
        if toggler:
            toggler.stop()
        if events:
            events.stop()
        sender.stop()
        if d.alive():
            d.stop()
        sub.stop()
        broker.close()


def test_broker_restart(env):
    """Broker stopped for 10 s: no QoS 1 event lost (they fit the queue), nothing dropped."""
    sse, during, got, dropped = outage(env, 1000)
    missing = [x for x in sse if x not in got]
    assert not missing, missing
    assert dropped == 0, dropped


def test_queue_drops(env):
    """Broker stopped for 10 s with a queue of 4: the oldest events are dropped and counted,
    the newest are delivered."""
    sse, during, got, dropped = outage(env, 4)
    missing = [x for x in sse if x not in got]
    assert missing, 'nothing was dropped from a queue of 4 (%d events during the outage)' % (
        len(during))
    # every event missing is counted (the counter also counts replaced state messages that
    # were dropped, so it may be larger)
    assert dropped >= len(missing), (dropped, len(missing))
    # drop-oldest: the last event of the outage arrived
    assert during[-1] in got, during[-1]


def test_hostile(env):
    """Brokers that refuse, reject the password, or drop the connection before and after
    CONNACK: clear log lines (one per text per minute), counters, and the stream runs."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port, colour=WHITE)
    # nothing listens on the broker port
    closed = free_port()
    d = Daemon(env, config(closed, port, delays=(0.05, 0.2)))
    try:
        d.wait_state('cart', 'running', 20)
        line = 'mqtt: cannot connect to mqtt://127.0.0.1:%d: Connection refused' % closed
        wait_until(lambda: line in d.log_text(), 10, what='refused line')
        wait_until(lambda: metric_value(d, 'echoviewd_mqtt_connect_failures_total') >= 10, 20,
                   what='ten attempts')
        assert d.log_text().count(line) == 1, d.log_text()   # rate-limited
        assert metric_value(d, 'echoviewd_mqtt_connected') == 0
        frames = assert_running(d)
        d.stop()
        # wrong password, then the right one from a password file
        broker = Broker(users={'cart': 'right-password'})
        try:
            d = Daemon(env, config(broker.port, port, '  username: cart\n  password: wrong\n'))
            wait_until(lambda: 'mqtt: the broker mqtt://127.0.0.1:%d refused the connection: '
                       'Connection Refused: not authorised;' % broker.port in d.log_text(), 20,
                       what='refused credentials')
            assert metric_value(d, 'echoviewd_mqtt_connected') == 0
            d.wait_state('cart', 'running', 20)
            d.stop()
            # the password file is relative to the configuration's folder
            d = DaemonWithFile(env, config(broker.port, port, '  username: cart\n'
                                           '  password-file: password\n'), 'password',
                               'right-password\n')
            wait_until(lambda: metric_value(d, 'echoviewd_mqtt_connected') == 1, 20,
                       what='connected with the password file')
            sub = Subscriber(broker, topic=PREFIX + '/status', count=1,
                             user=('cart', 'right-password'))
            sub.wait(lambda m: m, 10, 'online')
            sub.stop()
            assert sub.copy()[0][2] == 'online'
            d.stop()
        finally:
            broker.close()
        # a server that drops the connection right after CONNECT, then one that drops it
        # after CONNACK, in the middle of a PUBLISH
        for connack, text in ((False, 'mqtt: cannot connect to mqtt://127.0.0.1:%d: The '
                                      'connection was lost;'),
                              (True, 'mqtt: connection to mqtt://127.0.0.1:%d lost: The '
                                     'connection was lost;')):
            server = DropServer(connack)
            try:
                d = Daemon(env, config(server.port, port))
                d.wait_state('cart', 'running', 20)
                wait_until(lambda: text % server.port in d.log_text(), 20,
                           what='dropped-connection line')
                wait_until(lambda: server.accepted >= 3, 20, what='reconnect attempts')
                frames = assert_running(d)
                time.sleep(1)
                assert_running(d, frames)
                if connack:
                    assert metric_value(d, 'echoviewd_mqtt_reconnects_total') >= 1
                d.stop()
            finally:
                server.stop()
    finally:
        sender.stop()
        if d.alive():
            d.stop(check=False)


def test_tls(env):
    """mqtts:// to a broker with a self-signed certificate: connected with it as ca-file; with
    another certificate as ca-file, a `TLS failure` line and the stream runs on."""
    openssl = shutil.which('openssl')
    if not openssl:
        print('openssl not found: skipped')
        return SKIP
    with tempfile.TemporaryDirectory() as tmp:
        pem = self_signed(openssl, tmp)
        os.chmod(pem['a'][1], 0o644)   # the broker may run as another user
        broker = Broker(tls=pem['a'])
        port = free_port(socket.SOCK_DGRAM)
        sender = RtpRawSender(port, colour=WHITE)
        d = None
        try:
            sub = Subscriber(broker, topic=PREFIX + '/status', cafile=pem['a'][0])
            url = 'mqtts://127.0.0.1:%d' % broker.port
            text = config(broker.port, port, '  tls: {ca-file: %s}\n' % pem['a'][0]).replace(
                'mqtt://', 'mqtts://')
            d = Daemon(env, text)
            sub.wait(lambda _: sub.topic(PREFIX + '/status') == ['online'], 20, 'online over TLS')
            assert 'mqtt: connected to %s as echoviewd-%s' % (url, Daemon.INSTANCE) in \
                d.log_text()
            d.stop()
            sub.stop()
            d = Daemon(env, text.replace(pem['a'][0], pem['b'][0]))
            line = 'mqtt: cannot connect to %s: TLS failure: ' % url
            wait_until(lambda: line in d.log_text(), 20, what='TLS failure line')
            assert 'certificate verify failed' in d.log_text(), d.log_text()
            assert metric_value(d, 'echoviewd_mqtt_connected') == 0
            d.wait_state('cart', 'running', 20)
            frames = assert_running(d)
            time.sleep(1)
            assert_running(d, frames)
            d.stop()
        finally:
            sender.stop()
            if d and d.alive():
                d.stop(check=False)
            broker.close()


class DaemonWithFile(Daemon):
    """A daemon whose config folder also holds a file (a password file)."""

    def __init__(self, env, config_text, name, content):
        self._extra = (name, content)
        super().__init__(env, config_text)

    def write_config(self, text):
        name, content = self._extra
        with open(os.path.join(self.dir.name, name), 'w') as f:
            f.write(content)
        super().write_config(text)


MQTT_BASE = 'classifier: {model-file: @MODEL@}\nstreams:\n  - {id: a, source: {type: phantom}}\n'
BAD_MQTT = [
    ('mqtt:\n  keepalive: 10\n', "F:5:3: mqtt needs a 'broker'"),
    ('mqtt:\n  broker: http://b:1883\n', "F:5:11: broker 'http://b:1883': the scheme must be "
     "mqtt:// or mqtts://, not http://"),
    ('mqtt:\n  broker: "mqtt://"\n', "F:5:11: broker 'mqtt://' has no host"),
    ('mqtt:\n  broker: mqtt://u:p@b\n', "F:5:11: broker 'mqtt://u:p@b': no user name or "
     "password in the URL"),
    ('mqtt:\n  broker: mqtt://b:0\n', "F:5:11: broker 'mqtt://b:0': port 0 is not a broker port"),
    ('mqtt:\n  broker: mqtt://b:99999\n', "F:5:11: broker 'mqtt://b:99999' is not a URL"),
    ('mqtt:\n  broker: mqtt://b/topic\n', "F:5:11: broker 'mqtt://b/topic': a broker URL has "
     "no path, query or fragment"),
    ('mqtt:\n  broker: not a url\n', "F:5:11: broker 'not a url' is not a URL"),
    ('mqtt:\n  broker: mqtt://b\n  brokr: x\n', "F:6:3: unknown key 'brokr' in mqtt"),
    ('mqtt:\n  broker: mqtt://b\n  password: p\n', 'F:5:3: mqtt.password needs mqtt.username'),
    ('mqtt:\n  broker: mqtt://b\n  username: u\n  password-file: /nonexistent/pw\n',
     'F:7:18: cannot read password-file: '),
    ('mqtt:\n  broker: mqtt://b\n  tls: {ca-file: /nonexistent/ca.pem}\n',
     'F:6:18: cannot read ca-file: '),
    ('mqtt:\n  broker: mqtt://b\n  topic-prefix: a/#\n', "F:6:17: topic-prefix 'a/#' must be"),
    ('mqtt:\n  broker: mqtt://b\n  topic-prefix: /a\n', "F:6:17: topic-prefix '/a' must be"),
    ('mqtt:\n  broker: mqtt://b\n  qos: {state: 2}\n',
     "F:6:16: 'state' must be between 0 and 1, not 2"),
    ('mqtt:\n  broker: mqtt://b\n  qos: {status: 1}\n', "F:6:9: unknown key 'status' in mqtt.qos"),
    ('mqtt:\n  broker: mqtt://b\n  queue-size: 0\n',
     "F:6:15: 'queue-size' must be between 1 and 1000000, not 0"),
    ('mqtt:\n  broker: mqtt://b\n  state-interval: 0\n', "F:6:19: 'state-interval' must be"),
    ('mqtt:\n  broker: mqtt://b\n  client-id: "a b"\n', "F:6:14: client-id 'a b' must be"),
    ('mqtt:\n  broker: mqtt://b\n  reconnect-delay: 5\n  reconnect-delay-max: 1\n',
     'F:5:3: mqtt.reconnect-delay-max is below reconnect-delay'),
    ('mqtt: [1]\n', 'F:4:7: mqtt must be a mapping'),
]


def test_config(env):
    """--check-config: each bad mqtt section is refused with file:line:column; good ones pass."""
    for text, want in BAD_MQTT:
        rc, out = check_config(env, MQTT_BASE + text)
        assert rc == 1 and want in out, (text, rc, out)
    rc, out = check_config(env, MQTT_BASE + 'mqtt:\n  broker: mqtts://[::1]\n  username: u\n'
                           '  password: p\n  qos: {state: 0, events: 1}\n  state-interval: 0.5\n')
    assert rc == 0 and ', mqtt mqtts://[::1])' in out, out
    rc, out = check_config(env, MQTT_BASE + 'mqtt: null\n')
    assert rc == 0 and 'mqtt' not in out, out
    # the same validator at start: exit status 1 and the same message
    d_dir = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'evd-mqtt-bad-%d' % os.getpid())
    os.makedirs(d_dir, exist_ok=True)
    path = os.path.join(d_dir, 'echoviewd.yaml')
    with open(path, 'w') as f:
        f.write((MQTT_BASE + BAD_MQTT[1][0]).replace('@MODEL@', env.model))
    r = subprocess.run([env.echoviewd, '--config', path], env=env.env, capture_output=True,
                       text=True, timeout=60)
    os.unlink(path)
    os.rmdir(d_dir)
    assert r.returncode == 1 and BAD_MQTT[1][1].replace('F:', path + ':') in r.stderr, r.stderr


TESTS = {'publish': test_publish, 'last-will': test_last_will,
         'broker-restart': test_broker_restart, 'queue-drops': test_queue_drops,
         'hostile': test_hostile, 'tls': test_tls, 'config': test_config}

if __name__ == '__main__':
    require_mosquitto()
    sys.exit(run_main(TESTS, sys.argv))
