#!/usr/bin/env python3
"""test_daemon.py ECHOVIEWD PLUGIN_DIR SOURCE_ROOT [TEST...]: echoviewd integration tests.

Starts echoviewd on free loopback ports with small configs and checks its documented behaviour:
the API's fields and status codes, events, metrics, supervision (stall, recovery, garbage,
resolution changes), configuration errors, bad requests, SIGHUP reload. Stdlib only.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evdtest import (SKIP, SOCKET_ACTIVATE, Daemon, RtpRawSender, base_config,  # noqa: E402
                     drop_instance, free_port, run_main, self_signed, wait_until)

BASE = base_config(http='  connection-timeout: 2\n  request-size-limit: 8192\n')


def rtp_stream(sid, port, width=64, height=48):
    return """\
  - id: %s
    source: {type: rtp-raw, port: %d, width: %d, height: %d, sampling: RGB, jitter-latency: 20}
""" % (sid, port, width, height)


def phantom_stream(sid, extra=''):
    return """\
  - id: %s
    source: {type: phantom, width: 160, height: 120, framerate: 10%s}
""" % (sid, extra)


VIEW_KEYS = {'label', 'label_id', 'confidence', 'stable_label', 'stable_label_id', 'probabilities',
             'withheld'}
STREAM_KEYS = {'id', 'source', 'enabled', 'state', 'state_since', 'view', 'model', 'backend',
               'frames', 'inferred', 'skipped', 'received', 'dropped', 'fps', 'latency_ms',
               'view_changes', 'restarts', 'last_error', 'last_error_time', 'packets',
               'frame_size', 'frame_difference', 'frozen_seconds', 'warnings'}


def test_endpoints(env):
    """Every endpoint's status code and JSON fields, with a bearer token."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port)
    d = Daemon(env, BASE.replace('  port: @HTTP_PORT@\n', '  port: @HTTP_PORT@\n  token: s3cret\n'
                                 '  host-names: [echo-cart.example]\n')
               + 'streams:\n' + rtp_stream('cart', port) + phantom_stream('local'),
               token='s3cret')
    try:
        d.wait_state('cart', 'running', 20)
        d.wait_state('local', 'running', 20)
        # open endpoints
        assert d.json('/healthz', token=False) == {'status': 'ok'}
        ready = wait_until(lambda: d.get('/readyz', token=False)[0] == 200, 10, what='readyz')
        # the reasons name streams and errors: with the token only
        assert d.json('/readyz', token=False) == {'ready': True}
        body = d.json('/readyz')
        assert body == {'ready': True, 'reasons': []}, body
        # DNS rebinding: a Host that is a name, unless localhost or one of http.host-names
        for host, want in (('evil.example', 421), ('evil.example:%d' % d.port, 421),
                           ('localhost:%d' % d.port, 200), ('ECHO-CART.example:8088', 200),
                           ('[::1]:%d' % d.port, 200), ('10.1.2.3', 200)):
            status, _, body = d.get('/healthz', headers={'Host': host})
            assert status == want, (host, status, body)
            if want == 421:
                assert json.loads(body) == {
                    'error': "the Host header names none of this server's names (a numeric "
                             "address, localhost, or http.host-names)", 'status': 421}, body
        assert metric(d, 'echoviewd_http_misdirected_requests_total') == 2
        status, headers, page = d.get('/', token=False)
        assert status == 200 and headers['content-type'].startswith('text/html'), headers
        assert b'/api/v1/events' in page
        # per stream: probability bars of every class and a timeline of the stable view
        assert b'drawProbabilities(data.stream, data.probabilities' in page
        assert b'<canvas class="timeline"' in page
        for external in (b'src="http', b"src='http", b'href="http', b'@import', b'url(http'):
            assert external not in page, external
        assert "default-src 'none'" in headers['content-security-policy']
        # protected endpoints without / with a wrong token
        for path in ('/api/v1/status', '/api/v1/streams', '/api/v1/streams/cart', '/metrics',
                     '/api/v1/events'):
            status, headers, body = d.get(path, token=False)
            assert status == 401, (path, status)
            assert headers['www-authenticate'].startswith('Bearer'), headers
            assert json.loads(body)['error'] == 'missing or wrong bearer token'
            status, _, _ = d.get(path, token=False, headers={'Authorization': 'Bearer wrong'})
            assert status == 401, (path, status)
            status, _, _ = d.get(path, token=False, headers={'Authorization': 'Basic czNjcmV0'})
            assert status == 401, (path, status)
        # status
        st = d.json('/api/v1/status')
        assert set(st) >= {'version', 'uptime_seconds', 'model', 'backend', 'streams', 'totals',
                           'senders'}, st
        assert st['model']['loaded'] is True and st['model']['name'] == 'darts_v2_nrnr_g1', st
        assert st['backend'] == 'cpu'
        assert st['streams']['configured'] == 2 and st['streams']['running'] == 2, st
        assert st['totals']['frames'] > 0 and st['totals']['inferred'] > 0, st
        assert st['uptime_seconds'] > 0
        # streams
        lst = d.json('/api/v1/streams')['streams']
        assert [s['id'] for s in lst] == ['cart', 'local']
        for s in lst:
            assert set(s) == STREAM_KEYS, set(s) ^ STREAM_KEYS
            assert set(s['view']) == VIEW_KEYS
            assert s['state'] == 'running'
            assert len(s['view']['probabilities']) == 14
            assert abs(sum(s['view']['probabilities'].values()) - 1) < 1e-3
            assert s['view']['label'] in s['view']['probabilities']
            assert 0 < s['view']['confidence'] <= 1
            assert set(s['latency_ms']) == {'mean', 'p50', 'p99', 'window'}
            assert s['latency_ms']['p99'] >= s['latency_ms']['p50'] > 0
            assert s['view']['withheld'] is None
            assert s['frame_difference'] > 1 and s['frozen_seconds'] == 0, s
        cart = d.stream('cart')
        assert cart['frame_size'] == {'width': 64, 'height': 48}, cart
        assert d.stream('local')['frame_size'] is None
        assert cart['source'] == 'rtp-raw' and cart['packets']['received'] > 0, cart
        assert set(cart['packets']) == {'received', 'lost', 'late', 'duplicates', 'loss_ratio',
                                        'loss_ratio_recent', 'rejected_address',
                                        'rejected_ssrc'}, cart['packets']
        assert 'udpsrc' in cart['pipeline'] and 'echoviewclassify' in cart['pipeline']
        # one meta type for every restart (a new unique-id per element registered a GType each)
        assert ' unique-id=1 ' in cart['pipeline'], cart['pipeline']
        local = d.stream('local')
        assert local['packets'] is None and local['source'] == 'phantom'
        # a white frame: the fixture model answers A4CH-LV (see tests/gst for the element)
        assert cart['view']['stable_label'] == 'A4CH-LV', cart['view']
        wait_until(lambda: d.stream('cart')['fps'] > 10, 10, what='fps')
        # unknown stream, unknown path
        status, _, body = d.get('/api/v1/streams/nope')
        assert status == 404 and json.loads(body) == {'error': 'no such stream', 'status': 404}
        status, _, body = d.get('/nope')
        assert status == 404 and json.loads(body)['error'] == 'no such path'
        # HEAD works, other methods do not
        status, headers, body = d.request('HEAD', '/healthz')
        assert status == 200 and body == b''
        status, headers, _ = d.request('POST', '/api/v1/streams')
        assert status == 405 and headers['allow'] == 'GET, HEAD'
        # metrics
        status, headers, metrics = d.get('/metrics')
        assert status == 200 and headers['content-type'].startswith('text/plain; version=0.0.4')
        text = drop_instance(metrics.decode())
        for needle in ('echoviewd_stream_frames_total{stream="cart"}',
                       'echoviewd_stream_inference_latency_seconds_bucket{stream="cart",le="+Inf"}',
                       'echoviewd_stream_inference_latency_seconds_count{stream="local"}',
                       'echoviewd_stream_up{stream="cart"} 1',
                       'echoviewd_stream_rtp_packets_lost_total{stream="cart"} ',
                       'echoviewd_stream_view_probability_ratio{stream="cart",view="A4CH-LV"}'):
            assert needle in text, needle
        # the process metrics, against /proc of the daemon
        import resource
        pid = d.proc.pid
        rss = int(open('/proc/%d/statm' % pid).read().split()[1]) * os.sysconf('SC_PAGESIZE')
        assert abs(metric(d, 'process_resident_memory_bytes') - rss) < 16 << 20, rss
        assert metric(d, 'process_max_fds') == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        fds = len(os.listdir('/proc/%d/fd' % pid))
        assert abs(metric(d, 'process_open_fds') - fds) <= 4, fds
        ticks = int(open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[19])
        btime = [int(l.split()[1]) for l in open('/proc/stat') if l.startswith('btime ')][0]
        start = btime + ticks / os.sysconf('SC_CLK_TCK')
        assert abs(metric(d, 'process_start_time_seconds') - start) < 3, start
        assert 0 < metric(d, 'process_cpu_seconds_total') < 3600
        # the 401s above are logged once, with their count, when their 10 s window ends
        wait_until(lambda: re.search(r'http: 15 requests without a valid bearer token in the '
                                     r'last 1\d s \(the latest from 127\.0\.0\.1\)',
                                     d.log_text()), 15, what='the 401 log line')
        promtool = shutil.which('promtool')
        if promtool:
            r = subprocess.run([promtool, 'check', 'metrics'], input=metrics, capture_output=True,
                               timeout=30)
            assert r.returncode == 0, r.stdout + r.stderr
        else:
            print('promtool not found: metrics lint skipped')
    finally:
        sender.stop()
        d.stop()


def read_events(sock, until, timeout):
    """Reads SSE blocks until until(events) is true; returns [(event, data)]."""
    buf = b''
    events = []
    deadline = time.monotonic() + timeout
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        while b'\n\n' in buf:
            block, buf = buf.split(b'\n\n', 1)
            ev, data = None, None
            for line in block.decode().split('\n'):
                if line.startswith('event: '):
                    ev = line[7:]
                elif line.startswith('data: '):
                    data = json.loads(line[6:])
            if ev:
                events.append((ev, data))
        if until(events):
            return events
    raise AssertionError('events: timed out; got %r' % [e for e, _ in events])


def open_events(d):
    s = socket.create_connection(('127.0.0.1', d.port), timeout=5)
    s.sendall(b'GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    return s


def test_events(env):
    """A scheduled view change (white frames, then black) arrives as a `view` event."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port, colour=(255, 255, 255))
    d = Daemon(env, BASE + 'streams:\n' + rtp_stream('cart', port))
    s = None
    try:
        d.wait_state('cart', 'running', 20)
        wait_until(lambda: d.stream('cart')['view']['stable_label'] == 'A4CH-LV', 10,
                   what='white frames classified')
        s = open_events(d)
        head = s.recv(4096)
        assert head.startswith(b'HTTP/1.1 200'), head
        assert b'text/event-stream' in head
        sender.colour = (0, 0, 0)          # the schedule: white, then black
        events = read_events(s, lambda ev: any(e == 'view' for e, _ in ev)
                             and any(e == 'stats' for e, _ in ev), 15)
        view = [data for e, data in events if e == 'view'][0]
        assert view['stream'] == 'cart' and view['view'] == 'PLAX-TV', view
        assert view['previous'] == 'A4CH-LV', view
        assert set(view) >= {'stream', 'view', 'view_id', 'previous', 'confidence', 'time',
                             'pts_ns'}, view
        stats = [data for e, data in events if e == 'stats' and data['stream'] == 'cart']
        assert stats, events
        # every class's probability, for the page's bars
        probabilities = stats[-1]['probabilities']
        assert len(probabilities) == 14 and abs(sum(probabilities.values()) - 1) < 1e-3, stats[-1]
        assert stats[-1]['withheld'] is None and stats[-1]['label'] in probabilities
        assert d.stream('cart')['view_changes'] >= 2
        # a stopped sender shows up as a state event
        sender.paused = True
        events = read_events(s, lambda ev: any(e == 'state' and data['state'] == 'stalled'
                                               for e, data in ev), 10)
        sender.paused = False
        # stopping the daemon ends the (suspended) event stream cleanly
        d.stop()
        s.settimeout(5)
        rest = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    finally:
        if s:
            s.close()
        sender.stop()
        if d.alive():
            d.stop()


def test_stall_and_recovery(env):
    """A stream whose sender stops goes stalled and comes back; the other never stops."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port)
    d = Daemon(env, BASE + 'streams:\n' + rtp_stream('cart', port) + phantom_stream('steady'))
    try:
        d.wait_state('cart', 'running', 20)
        d.wait_state('steady', 'running', 20)
        steady_since = d.stream('steady')['state_since']
        sender.paused = True
        t0 = time.monotonic()
        seen = set()
        while time.monotonic() - t0 < 6:
            seen.add(d.stream('cart')['state'])
            assert d.stream('steady')['state'] == 'running'
            time.sleep(0.2)
        assert 'stalled' in seen, seen
        cart = d.stream('cart')
        assert cart['state'] in ('stalled', 'starting'), cart['state']
        assert cart['last_error'] and 'no ' in cart['last_error'], cart['last_error']
        assert cart['restarts'] >= 1, cart
        sender.paused = False
        d.wait_state('cart', 'running', 10)
        steady = d.stream('steady')
        assert steady['state'] == 'running' and steady['restarts'] == 0, steady
        assert steady['state_since'] == steady_since
        status, _, _ = d.get('/readyz')
        assert status == 200
    finally:
        sender.stop()
        d.stop()


def test_hostile_input(env):
    """Garbage UDP and a sender that changes resolution crash nothing."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port)
    d = Daemon(env, BASE + 'streams:\n' + rtp_stream('cart', port) + phantom_stream('steady'))
    try:
        d.wait_state('cart', 'running', 20)
        for _ in range(5):
            sender.garbage(300)
            time.sleep(0.1)
        for size in ((96, 72), (32, 24), (320, 200), (64, 48)):
            sender.width, sender.height = size
            time.sleep(1.0)
            assert d.alive(), d.log_text()[-2000:]
        d.wait_state('cart', 'running', 10)
        frames = d.stream('cart')['frames']
        wait_until(lambda: d.stream('cart')['frames'] > frames + 10, 10, what='frames flow')
        assert d.stream('steady')['state'] == 'running'
        assert d.get('/healthz')[0] == 200
    finally:
        sender.stop()
        d.stop()


def metric_in(text, line_prefix):
    """The value of the one sample in a /metrics body whose line starts with line_prefix."""
    found = [l for l in text.split('\n') if l.startswith(line_prefix + ' ')]
    assert len(found) == 1, (line_prefix, found)
    return float(found[0].split(' ')[-1])


def metric(d, line_prefix):
    """The value of the one /metrics sample whose line starts with line_prefix."""
    status, _, body = d.get('/metrics')
    assert status == 200
    return metric_in(drop_instance(body.decode()), line_prefix)


def test_frame_checks(env):
    """A sender whose frames are not the configured size makes the stream `error`, one that
    repeats its frame makes it `frozen`; neither reports a view; both recover."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port)
    cart = rtp_stream('cart', port) + '    frozen-timeout: 1\n'
    d = Daemon(env, BASE + 'streams:\n' + cart + phantom_stream('steady'))
    s = None
    seen = set()
    try:
        d.wait_state('cart', 'running', 20)
        d.wait_state('steady', 'running', 20)
        wait_until(lambda: d.stream('cart')['view']['stable_label'] == 'A4CH-LV', 10,
                   what='white frames classified')
        s = open_events(d)
        assert s.recv(4096).startswith(b'HTTP/1.1 200')
        for size in ((96, 72), (32, 24)):
            sender.width, sender.height = size
            st = d.wait_state('cart', 'error', 5)
            assert st['last_error'] == (
                'frames are %dx%d, the configuration says 64x48 (source.width and source.height '
                'of an rtp-raw stream must be the sender\'s)' % size), st['last_error']
            assert st['frame_size'] == {'width': size[0], 'height': size[1]}, st
            assert st['view'] == {'label': 'unknown', 'label_id': -1, 'confidence': 0,
                                  'stable_label': 'unknown', 'stable_label_id': -1,
                                  'probabilities': {}, 'withheld': 'stream is error'}, st['view']
            assert st['restarts'] == 0, st          # the pipeline is kept: nothing to rebuild
            assert d.json('/readyz', expect=503)['reasons'] == ['stream cart is error']
            assert d.json('/api/v1/status')['streams']['by_state']['error'] == 1
            assert metric(d, 'echoviewd_stream_state{stream="cart",state="error"}') == 1
            assert metric(d, 'echoviewd_stream_up{stream="cart"}') == 0
            assert metric(d, 'echoviewd_stream_view_withheld{stream="cart"}') == 1
            assert metric(d, 'echoviewd_stream_view_confidence_ratio{stream="cart"}') == 0
            events = read_events(s, lambda ev: any(e == 'view' and x['view'] == 'unknown'
                                                   for e, x in ev), 5)
            view = [x for e, x in events if e == 'view' and x['view'] == 'unknown'][0]
            assert view['previous'] == 'A4CH-LV' and view['state'] == 'error', view
            assert view['reason'] == st['last_error'] and view['confidence'] == 0, view
            assert any(e == 'state' and x['stream'] == 'cart' and x['state'] == 'error'
                       for e, x in events), events
            sender.width, sender.height = 64, 48
            st = d.wait_state('cart', 'running', 5)
            assert st['view']['withheld'] is None and st['frame_size'] == {'width': 64,
                                                                            'height': 48}, st
            events = read_events(s, lambda ev: any(e == 'view' and x['previous'] == 'unknown'
                                                   for e, x in ev), 5)
            view = [x for e, x in events if e == 'view' and x['previous'] == 'unknown'][0]
            assert view['view'] == 'A4CH-LV' and view['state'] == 'running', view
            assert d.stream('cart')['view']['stable_label'] == 'A4CH-LV'
            seen.add(d.stream('steady')['state'])
        # the freeze button: the same frame again and again
        sender.frozen = True
        st = d.wait_state('cart', 'frozen', 5)
        assert st['last_error'].startswith('frames unchanged for '), st['last_error']
        assert st['last_error'].endswith(' s (mean difference 0.00 of 255, frozen-difference '
                                         '1.00)'), st['last_error']
        assert st['frame_difference'] == 0 and st['frozen_seconds'] >= 1, st
        assert st['view']['withheld'] == 'stream is frozen' and st['view']['confidence'] == 0
        assert metric(d, 'echoviewd_stream_state{stream="cart",state="frozen"}') == 1
        assert metric(d, 'echoviewd_stream_frames_unchanged_seconds{stream="cart"}') >= 1
        sender.frozen = False
        st = d.wait_state('cart', 'running', 5)
        assert st['frozen_seconds'] == 0 and st['frame_difference'] == RtpRawSender.FLICKER, st
        assert st['restarts'] == 0, st
        # the phantom (a live image: speckle and a beating heart) was never taken for frozen
        steady = d.stream('steady')
        seen.add(steady['state'])
        assert seen == {'running'} and steady['restarts'] == 0, (seen, steady)
        print('phantom frame difference: %.2f of 255' % steady['frame_difference'])
        assert steady['frame_difference'] > 1, steady
    finally:
        if s:
            s.close()
        sender.stop()
        d.stop()


def test_dropped_counter(env):
    """Under load (a source much faster than the classifier) the dropped-frames counter grows
    and never goes down; frames in flight are not counted as dropped."""
    fast = """\
  - id: fast
    source: {type: pipeline, pipeline: "videotestsrc pattern=snow ! video/x-raw,width=320,height=240,framerate=2000/1"}
"""
    d = Daemon(env, BASE + 'streams:\n' + fast)
    try:
        d.wait_state('fast', 'running', 20)
        samples = []
        for _ in range(40):
            body = drop_instance(d.get('/metrics')[2].decode())   # one snapshot: the three at one instant
            dropped, received, frames = (metric_in(body, name + '{stream="fast"}') for name in (
                'echoviewd_stream_dropped_frames_total', 'echoviewd_stream_received_frames_total',
                'echoviewd_stream_frames_total'))
            samples.append((dropped, received, frames))
            time.sleep(0.05)
        drops = [x[0] for x in samples]
        assert all(b >= a for a, b in zip(drops, drops[1:])), drops
        assert drops[-1] > drops[0], drops
        # a dropped frame was received and never classified
        assert all(dr <= rx - fr for dr, rx, fr in samples), samples
        st = d.stream('fast')
        print('received %d, classified %d, dropped %d' % (st['received'], st['frames'],
                                                           st['dropped']))
        assert st['dropped'] >= drops[-1] and st['dropped'] <= st['received'] - st['frames'], st
    finally:
        d.stop()


def test_diagnostics(env):
    """last_error says why: a wrong payload type, a busy port (GStreamer's detail and a hint);
    garbage packets log one warning line per text and window, not one per packet."""
    port, busy_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port)
    sender.payload = 97
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(('127.0.0.1', busy_port))
    d = Daemon(env, BASE + 'streams:\n' + rtp_stream('cart', port) + rtp_stream('busy', busy_port))
    try:
        st = d.wait_state('cart', 'stalled', 10)
        assert st['last_error'] == ('no frames within 1.0 s of start: packets arrive with RTP '
                                    'payload type 97, the configuration says 96 '
                                    '(source.payload)'), st['last_error']
        st = wait_until(lambda: d.stream('busy')['last_error'], 10, what='busy port error')
        assert st == ('src: Could not get/set settings from/on resource. (bind failed: Error '
                      'binding to address 127.0.0.1:%d: Address already in use) (another '
                      'program or stream has this UDP port)' % busy_port), st
        sender.payload = 96
        d.wait_state('cart', 'running', 10)
        for _ in range(20):
            sender.garbage(300)
            time.sleep(0.05)

        # the daemon counts the garbage as it parses it: wait until the count stands still
        # across a /metrics read (the counter only grows, so that read saw the same number)
        def settled():
            before = d.stream('cart')['warnings']
            in_metrics = metric(d, 'echoviewd_stream_warnings_total{stream="cart"}')
            after = d.stream('cart')['warnings']
            assert before == after and before > 100, (before, in_metrics, after)
            return before, in_metrics
        warnings, in_metrics = wait_until(settled, 10, what='the warning count to settle')
        assert warnings == in_metrics, (warnings, in_metrics)
        d.proc.send_signal(signal.SIGTERM)   # the log is read after the shutdown lines
        d.proc.wait(15)
    finally:
        sender.stop()
        busy.close()
        d.stop()
    log = Daemon.logs[-1]
    text = 'stream cart: jitter: Could not decode stream. (Received invalid RTP payload, dropping)'
    first = [l for l in log.split('\n') if l.endswith(text)]
    more = [l for l in log.split('\n') if l.endswith(': ' + text[len('stream cart: '):])
            and ' more in the last ' in l]
    assert len(first) == 1, first[:5]
    # the rest, counted, in one line when the window ends (here: at shutdown)
    assert len(more) == 1, more
    n = int(more[0].split('stream cart: ')[1].split(' ')[0])
    assert n + 1 >= warnings, (n, warnings)


def test_degraded(env):
    """Packet loss above max-loss, and a stable view that stays unknown, make a stream
    `degraded` (view withheld, reason in last_error); both recover."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port)
    config = BASE.replace('  restart-delay-max: 1\n', '  restart-delay-max: 1\n'
                          '  unknown-timeout: 2\n')
    dim = phantom_stream('dim') + '    classifier: {confidence-threshold: 1.0}\n'
    d = Daemon(env, config + 'streams:\n' + rtp_stream('cart', port) + dim)
    try:
        d.wait_state('cart', 'running', 20)
        st = d.wait_state('dim', 'degraded', 20)
        assert re.fullmatch(r'no confident view for \d+\.\d s \(the stable view is unknown: not '
                            r'an echo view, or below the confidence threshold\)',
                            st['last_error']), st['last_error']
        assert st['view']['withheld'] == 'stream is degraded', st['view']
        assert st['packets'] is None
        sender.loss = 0.3
        st = d.wait_state('cart', 'degraded', 15)
        assert re.fullmatch(r'\d+\.\d % of the RTP packets lost over the last 5 s \(max-loss '
                            r'5\.0 %\)', st['last_error']), st['last_error']
        assert st['packets']['loss_ratio_recent'] > 0.05, st['packets']
        assert st['view']['withheld'] == 'stream is degraded' and st['restarts'] == 0, st
        assert metric(d, 'echoviewd_stream_rtp_loss_recent_ratio{stream="cart"}') > 0.05
        assert metric(d, 'echoviewd_stream_state{stream="cart",state="degraded"}') == 1
        sender.loss = 0
        st = d.wait_state('cart', 'running', 15)
        assert st['view']['withheld'] is None and st['packets']['loss_ratio_recent'] <= 0.05, st
        assert d.stream('dim')['state'] == 'degraded'
    finally:
        sender.stop()
        d.stop()


def test_low_fps(env):
    """A sender slower than its declared source.framerate makes the stream `degraded` once its
    fps stays below min-fps-ratio of it for low-fps-timeout (view withheld, the reason with both
    rates, the state metric and event, fps still reported); back to `running` when the sender
    keeps its rate."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port, fps=4)
    config = BASE.replace('  restart-delay-max: 1\n', '  restart-delay-max: 1\n'
                          '  low-fps-timeout: 2\n')
    stream = rtp_stream('cart', port).replace('jitter-latency: 20}',
                                              'jitter-latency: 20, framerate: 20}')
    d = Daemon(env, config + 'streams:\n' + stream + phantom_stream('ref'))
    s = None
    try:
        s = open_events(d)
        st = d.wait_state('cart', 'degraded', 20)
        assert re.fullmatch(r'\d+\.\d fps classified for \d+\.\d s, below 50 % of the '
                            r"source's 20 fps \(source\.framerate, min-fps-ratio 0\.50\): only "
                            r'\d+\.\d fps arrive from the source', st['last_error']), \
            st['last_error']
        assert 1 <= st['fps'] < 10, st
        assert st['view']['withheld'] == 'stream is degraded' and st['restarts'] == 0, st
        assert metric(d, 'echoviewd_stream_state{stream="cart",state="degraded"}') == 1
        assert 1 <= metric(d, 'echoviewd_stream_frames_per_second{stream="cart"}') < 10
        events = read_events(s, lambda ev: any(e == 'state' and data['stream'] == 'cart'
                                               and data['state'] == 'degraded'
                                               for e, data in ev), 10)
        ev = [data for e, data in events if e == 'state' and data['state'] == 'degraded'][0]
        assert 'below 50 %' in ev['reason'], ev
        sender.set_fps(20)
        st = d.wait_state('cart', 'running', 20)
        assert st['view']['withheld'] is None and st['fps'] >= 10, st
        # the phantom beside it keeps its declared 10 fps
        assert d.stream('ref')['state'] == 'running'
    finally:
        if s:
            s.close()
        sender.stop()
        d.stop()


def test_ingress(env):
    """source.allowed-senders and source.ssrc: packets of other senders on the port are dropped
    and counted, so their frames never mix into the stream (its view stays the allowed one's)."""
    ports = [free_port(socket.SOCK_DGRAM) for _ in range(3)]
    good = [RtpRawSender(ports[0]), RtpRawSender(ports[1])]        # white: A4CH-LV
    # black frames (PLAX-TV) on the same ports: from another address, with another SSRC
    bad = [RtpRawSender(ports[0], colour=(0, 0, 0), source='127.0.0.2', ssrc=0x4543484f),
           RtpRawSender(ports[1], colour=(0, 0, 0), ssrc=7)]
    blocked = RtpRawSender(ports[2])
    streams = """\
  - id: byaddr
    source: {type: rtp-raw, port: %d, width: 64, height: 48, sampling: RGB, jitter-latency: 20,
             allowed-senders: [127.0.0.1, 10.0.0.0/8]}
  - id: byssrc
    source: {type: rtp-raw, port: %d, width: 64, height: 48, sampling: RGB, jitter-latency: 20,
             ssrc: %d}
  - id: blocked
    source: {type: rtp-raw, port: %d, width: 64, height: 48, sampling: RGB, jitter-latency: 20,
             allowed-senders: ["127.0.0.9/32"]}
""" % (ports[0], ports[1], 0x4543484f, ports[2])
    d = Daemon(env, BASE + 'streams:\n' + streams)
    try:
        for sid in ('byaddr', 'byssrc'):
            d.wait_state(sid, 'running', 20)
        # mixed in, the black frames would make every other inference PLAX-TV
        for _ in range(10):
            for sid in ('byaddr', 'byssrc'):
                view = d.stream(sid)['view']
                assert view['label'] == view['stable_label'] == 'A4CH-LV', (sid, view)
            time.sleep(0.2)
        for sid, reason in (('byaddr', 'address'), ('byssrc', 'ssrc')):
            st = d.stream(sid)
            other = 'ssrc' if reason == 'address' else 'address'
            assert st['packets']['rejected_' + reason] > 100, st['packets']
            assert st['packets']['rejected_' + other] == 0, st['packets']
            assert metric(d, 'echoviewd_stream_rtp_packets_rejected_total{stream="%s",reason="%s"}'
                          % (sid, reason)) >= st['packets']['rejected_' + reason]
        st = d.wait_state('blocked', 'stalled', 10)
        assert st['last_error'] == ('no frames within 1.0 s of start: packets from 127.0.0.1 '
                                    'dropped (not in source.allowed-senders)'), st['last_error']
        assert 'stream byssrc: packets of RTP SSRC 7 dropped (source.ssrc is 1162037327)' in \
            d.log_text()
        assert 'stream byaddr: packets from 127.0.0.2 dropped (not in source.allowed-senders)' in \
            d.log_text()
    finally:
        for s in good + bad + [blocked]:
            s.stop()
        d.stop()


def test_sdp_packets(env):
    """An sdp source (the bridge's path) reports its jitter buffer's packets like an rtp one,
    and its recent loss makes it degraded."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port)
    d = None
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        sdp = os.path.join(tmp, 'cart.sdp')
        with open(sdp, 'w') as f:
            f.write('v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cart\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n'
                    'm=video %d RTP/AVP 96\r\na=rtpmap:96 raw/90000\r\na=fmtp:96 sampling=RGB; '
                    'width=64; height=48; depth=8; colorimetry=BT601-5\r\n' % port)
        try:
            d = Daemon(env, BASE + 'streams:\n  - id: cart\n    source: {type: sdp, location: %s, '
                       'jitter-latency: 20}\n' % sdp)
            st = d.wait_state('cart', 'running', 20)
            st = wait_until(lambda: d.stream('cart')['packets']['received'] > 100 and
                            d.stream('cart'), 10, what='sdp packets counted')
            assert set(st['packets']) >= {'received', 'lost', 'loss_ratio_recent'}, st['packets']
            assert metric(d, 'echoviewd_stream_rtp_packets_received_total{stream="cart"}') > 100
            sender.loss = 0.3
            st = d.wait_state('cart', 'degraded', 15)
            assert ' of the RTP packets lost over the last 5 s' in st['last_error'], st
        finally:
            sender.stop()
            if d:
                d.stop()


def read_png(data):
    """(width, height, rows) of an 8-bit greyscale PNG without filtering (what echoviewd
    writes)."""
    import struct
    import zlib
    assert data[:8] == b'\x89PNG\r\n\x1a\n', data[:8]
    pos, idat, width = 8, b'', None
    while pos < len(data):
        n, kind = struct.unpack('!I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack('!I', data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b'IHDR':
            width, height, depth, colour = struct.unpack('!IIBB', body[:10])
            assert (depth, colour) == (8, 0), (depth, colour)
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    rows = [raw[y * (width + 1):(y + 1) * (width + 1)] for y in range(height)]
    assert all(r[0] == 0 for r in rows)
    return width, height, [r[1:] for r in rows]


def test_snapshot(env):
    """/api/v1/streams/{id}/snapshot.png: the latest frame, small and grey, behind the token,
    rate-limited."""
    port = free_port(socket.SOCK_DGRAM)
    sender = RtpRawSender(port)
    d = Daemon(env, BASE.replace('  port: @HTTP_PORT@\n', '  port: @HTTP_PORT@\n  token: s3cret\n')
               + 'streams:\n' + rtp_stream('cart', port) + phantom_stream('local'),
               token='s3cret')
    try:
        d.wait_state('cart', 'running', 20)
        d.wait_state('local', 'running', 20)
        assert d.get('/api/v1/streams/cart/snapshot.png', token=False)[0] == 401
        status, headers, body = d.get('/api/v1/streams/cart/snapshot.png')
        assert status == 200 and headers['content-type'] == 'image/png', (status, headers)
        width, height, rows = read_png(body)
        assert (width, height) == (64, 48), (width, height)
        values = set(b for r in rows for b in r)
        assert len(values) == 1 and min(values) > 200, values      # one white frame
        width, height, rows = read_png(d.get('/api/v1/streams/local/snapshot.png')[2])
        assert (width, height) == (160, 120) and len(set(b for r in rows for b in r)) > 20
        sender.colour = (0, 0, 0)
        wait_until(lambda: max(b for r in read_png(d.get('/api/v1/streams/cart/snapshot.png')[2])
                               [2] for b in r) < 40, 5, what='a black snapshot')
        status, _, body = d.get('/api/v1/streams/nope/snapshot.png')
        assert status == 404 and json.loads(body)['error'] == 'no such stream'
        statuses = [d.get('/api/v1/streams/cart/snapshot.png')[0] for _ in range(40)]
        assert 429 in statuses and statuses.count(200) <= 20, statuses
        status, _, body = d.get('/api/v1/streams/cart/snapshot.png')
        if status == 429:
            assert json.loads(body)['error'] == 'too many snapshot requests (at most 20 a second)'
        _, headers, _ = d.get('/', token=False)
        assert 'img-src blob:' in headers['content-security-policy']
    finally:
        sender.stop()
        d.stop()


def test_tls(env):
    """HTTPS with a certificate and key from the config (libmicrohttpd's GnuTLS): the API over
    TLS with the certificate checked, plain HTTP not served; mismatched or missing halves are
    refused."""
    import tempfile
    openssl = shutil.which('openssl')
    if not openssl:
        print('openssl not found: skipped')
        return SKIP
    with tempfile.TemporaryDirectory() as tmp:
        pem = self_signed(openssl, tmp)
        tls = '  tls-certificate: %s\n  tls-key: %s\n' % pem['a']
        config = BASE.replace('  port: @HTTP_PORT@\n', '  port: @HTTP_PORT@\n' + tls)
        d = Daemon(env, config + 'streams:\n' + phantom_stream('local'), tls_ca=pem['a'][0])
        try:
            d.wait_state('local', 'running', 20)
            assert [s['id'] for s in d.json('/api/v1/streams')['streams']] == ['local']
            assert 'listening on https://127.0.0.1:%d/' % d.port in d.log_text()
            out = raw(d, b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', timeout=3)
            assert not out.startswith(b'HTTP/1.1 200'), out[:100]    # no plain HTTP
        finally:
            d.stop()
        # the other certificate with the first key: the start fails, saying so
        bad = os.path.join(tmp, 'bad.yaml')
        with open(bad, 'w') as f:
            f.write(BASE.replace('@HTTP_PORT@', '0').replace('@MODEL@', env.model).replace(
                '  port: 0\n', '  port: 0\n  tls-certificate: %s\n  tls-key: %s\n'
                % (pem['b'][0], pem['a'][1])) + 'streams:\n' + phantom_stream('local'))
        r = subprocess.run([env.echoviewd, '--config', bad], env=env.env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 1 and ('the TLS certificate or key was refused (do they match? '
                                      'the log has libmicrohttpd\'s reason)') in r.stderr, r.stderr
        # half of a pair, and a file that is not PEM
        for text, want in (('http: {tls-certificate: %s}\n' % pem['a'][0],
                            'F: http.tls-certificate and http.tls-key go together'),
                           ('http: {tls-certificate: %s, tls-key: %s}\n' % (pem['a'][0], bad),
                            'F:1:%d: tls-key %s is not a PEM file' % (36 + len(pem['a'][0]), bad))):
            rc, out = check_config(env, text)
            assert rc == 1 and want in out, (text, rc, out)


def check_config(env, text, name='echoviewd.yaml'):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        # surrogateescape: '\udcff' in a case is the byte 0xFF (not UTF-8) in the file
        with open(path, 'w', encoding='utf-8', errors='surrogateescape') as f:
            f.write(text.replace('@MODEL@', env.model).replace('@HTTP_PORT@', '0'))
        r = subprocess.run([env.echoviewd, '--check-config', path], env=env.env,
                           capture_output=True, text=True, timeout=60)
        return r.returncode, (r.stdout + r.stderr).replace(path, 'F')


BAD_CONFIGS = [
    # (config, expected message)
    ('htp:\n  port: 1\n', 'F:1:1: unknown key \'htp\' in the top level'),
    ('http:\n  port: 70000\n', 'F:2:9: \'port\' must be between 0 and 65535, not 70000'),
    ('http:\n  port: eighty\n', 'F:2:9: \'port\' must be an integer, not \'eighty\''),
    ('http: [1, 2]\n', 'F:1:7: http must be a mapping'),
    ('http:\n  port: 1\n  port: 2\n', 'F:3:3: duplicate key \'port\' in http'),
    ('http: {port: 1\n', 'F:2:1: did not find expected'),
    ('a: &x [1]\nb: *x\n', 'F:1:1: unknown key \'a\' in the top level'),
    ('classifier: {model-file: @MODEL@}\nstreams:\n  - &s {id: a, source: {type: phantom}}\n'
     '  - *s\n', 'aliases are not supported'),
    ('classifier: {model-file: @MODEL@}\nstreams:\n  - {id: a, source: {type: rtp-raw, port: 5}}\n',
     'F:3:21: an rtp-raw source needs \'width\' and \'height\''),
    ('classifier: {model-file: @MODEL@}\nstreams:\n  - {id: a, source: {type: rtsp}}\n',
     'F:3:28: source type must be one of'),
    ('classifier: {model-file: @MODEL@}\nstreams:\n  - {id: a, source: {type: phantom, port: 5}}\n',
     'F:3:37: key \'port\' does not apply to a source of type phantom'),
    ('classifier: {model-file: @MODEL@}\nstreams:\n  - {id: a, source: {type: phantom}}\n'
     '  - {id: a, source: {type: phantom}}\n', 'F:4:5: duplicate stream id \'a\''),
    ('classifier: {model-file: @MODEL@}\nstreams:\n  - {id: "a b", source: {type: phantom}}\n',
     'F:3:10: stream id \'a b\' must be 1 to 64 of [A-Za-z0-9._-]'),
    ('classifier:\n  model-file: @MODEL@\n  threads: lots\nstreams:\n'
     '  - {id: a, source: {type: phantom}}\n',
     'F:3:12: bad value \'lots\' for echoviewclassify property \'threads\''),
    ('classifier:\n  model-file: @MODEL@\n  threads: 100000\nstreams:\n'
     '  - {id: a, source: {type: phantom}}\n',
     'F:3:12: bad value \'100000\' for echoviewclassify property \'threads\''),
    ('classifier:\n  model-file: @MODEL@\nstreams:\n'
     '  - {id: a, source: {type: phantom}, classifier: {colour: red}}\n',
     'F:4:59: echoviewclassify has no writable property \'colour\''),
    ('classifier:\n  model-file: @MODEL@\n  updates: none\n',
     'F:3:3: \'updates\' is set by echoviewd and cannot be configured in classifier'),
    ('classifier: {model-file: /nonexistent/model}\nstreams:\n  - {id: a, source: {type: phantom}}\n',
     'F:1:26: model-file: '),
    ('classifier: {model-file: @MODEL@}\nstreams:\n'
     '  - {id: a, source: {type: phantom, properties: {quality: 9}}}\n',
     'F:3:59: bad value \'9\' for echophantomsrc property \'quality\''),
    ('streams:\n  - {id: a, source: {type: phantom}}\n', 'F:2:5: stream \'a\' has no classifier '
     'model-file'),
    ('streams:\n  - {id: a, source: {type: phantom, properties: {view: NOPE}}}\n'
     'classifier: {model-file: @MODEL@}\n', ''),
    ('simulate:\n  - {id: s, port: 5, format: GRAY8}\n',
     'F:2:30: format must be I420 or RGB (grayscale is not payloadable in RFC 4175)'),
    ('supervision: {restart-delay: 5, restart-delay-max: 1}\n',
     'F: supervision.restart-delay-max is below restart-delay'),
    ('http: {token: "has space"}\n', 'F:1:15: \'token\' must be printable ASCII without spaces'),
    # found by tests/fuzz/fuzz_daemon_config.c: an empty token-file leaked its name
    ('http: {token-file: ""}\n', 'F:1:20: \'token-file\' must not be empty'),
    # a device is refused before anything is read from it (it would never end)
    ('http: {token-file: /dev/zero}\n',
     'F:1:20: cannot read token-file: /dev/zero: not a regular file'),
    ('', 'F:1:1: the file is empty'),
    # a typo in a frame size: the depayloader would allocate frames of that size
    ('classifier: {model-file: @MODEL@}\nstreams:\n'
     '  - {id: a, source: {type: rtp-raw, port: 5, width: 16384, height: 480}}\n',
     "F:3:53: 'width' must be between 16 and 4096, not 16384"),
    ('simulate:\n  - {id: s, port: 5, height: 5000}\n',
     "F:2:30: 'height' must be between 16 and 4096, not 5000"),
    # addresses are numeric, as the start binds them (a name passed the check, then the start
    # failed and systemd restarted it in a loop)
    ('http: {address: example.com}\n',
     "F:1:17: 'address' must be a numeric IPv4 or IPv6 address (or localhost), not "
     "'example.com'"),
    ('classifier: {model-file: @MODEL@}\nstreams:\n'
     '  - {id: a, source: {type: rtp-h264, port: 5, address: "not an address"}}\n',
     "F:3:56: 'address' must be a numeric IPv4 or IPv6 address, not 'not an address'"),
    ('simulate:\n  - {id: s, port: 5, host: cart.example}\n',
     "F:2:28: 'host' must be a numeric IPv4 or IPv6 address, not 'cart.example'"),
    # two streams on one UDP port: one of them would stall forever
    ('classifier: {model-file: @MODEL@}\nstreams:\n'
     '  - {id: a, source: {type: rtp-jpeg, port: 5004}}\n'
     '  - {id: b, source: {type: rtp-h264, port: 5004}}\n',
     "F:4:44: stream 'b' uses UDP port 5004, as stream 'a' (line 3) does: one UDP port per "
     "stream (one of them would never receive a packet)"),
    # one number syntax: strtod alone would read 0x10 as 16
    ('supervision: {stall-timeout: 0x10}\n',
     "F:1:30: 'stall-timeout' must be a decimal number, not '0x10'"),
    ('supervision: {frozen-timeout: -1}\n',
     "F:1:31: 'frozen-timeout' must be between 0 and 3600, not -1"),
    ('classifier: {model-file: @MODEL@}\nstreams:\n'
     '  - {id: a, source: {type: rtp-jpeg, port: 5, allowed-senders: [10.0.0.0/33]}}\n',
     "F:3:65: '10.0.0.0/33' is not a numeric address or prefix (10.1.2.3, 10.1.2.0/24, "
     "fd00::/8)"),
    ('classifier: {model-file: @MODEL@}\nstreams:\n'
     '  - {id: a, source: {type: phantom, ssrc: 5}}\n',
     "F:3:37: key 'ssrc' does not apply to a source of type phantom"),
    ('supervision: {max-loss: 1.5}\n', "F:1:25: 'max-loss' must be between 0 and 1, not 1.5"),
    ('supervision: {min-fps-ratio: 2}\n',
     "F:1:30: 'min-fps-ratio' must be between 0 and 1, not 2"),
    ('classifier: {model-file: @MODEL@}\nstreams:\n'
     '  - {id: a, source: {type: rtp-raw, port: 5, width: 64, height: 48, framerate: 0}}\n',
     "F:3:80: 'framerate' must be between 1 and 1000, not 0"),
    ('supervision: {frozen-difference: 256}\n',
     "F:1:34: 'frozen-difference' must be between 0 and 255, not 256"),
    # the YAML reader's rules (base/ev_yaml.h), as in the bridge and model.yaml
    ('http: {colour: red}\n', "F:1:8: unknown key 'colour' in http (expected one of: address, "
     "port, token, token-file, connection-limit, connection-timeout, request-size-limit, "
     "event-clients, connections-per-address, header-timeout, host-names, tls-certificate, "
     "tls-key)"),
    ('http: {port: 1}\n---\nhttp: {port: 2}\n',
     'F:2:1: a second YAML document starts here; give one document per file'),
    ('http: {address: "caf\udcff"}\n',
     'F:1:21: invalid leading UTF-8 octet (0xFF; the file must be UTF-8)'),
    ('classifier: {model-file: @MODEL@}\nsimulate: ' + '[' * 40 + ']' * 40 + '\n',
     'F:2:42: nested deeper than 32 levels'),
    ('http: {port: &p 1, address: *p}\n', 'F:1:14: aliases are not supported'),
    ('classifier:\n  model-file: @MODEL@\n  threads: "4"\nstreams:\n'
     '  - {id: a, source: {type: phantom}, enabled: "true"}\n',
     "F:5:47: 'enabled' must be true or false"),
]


def test_config(env):
    """Bad configs are rejected with file:line:column; the reference config is valid."""
    import tempfile
    failures = []
    for text, expected in BAD_CONFIGS:
        rc, out = check_config(env, text)
        if expected == '':             # only must not be accepted silently... or be valid
            continue
        if rc != 1 or expected not in out:
            failures.append('%r: rc %d, output %r, want %r' % (text, rc, out.strip(), expected))
    assert not failures, '\n'.join(failures)
    # a good config
    rc, out = check_config(env, BASE.replace('@HTTP_PORT@', '0') + 'streams:\n'
                           + phantom_stream('a') + rtp_stream('b', 5004))
    assert rc == 0 and 'ok (2 streams' in out, out
    # the reference config (checked from a temporary folder, so its model path, relative to
    # conf/, is made absolute), with the test model when the shipped one is absent
    ref = open(os.path.join(env.source_root, 'conf', 'echoviewd.yaml')).read()
    ref = ref.replace('../models/echo-2cell-96',
                      os.path.join(env.source_root, 'models', 'echo-2cell-96') if env.real_model
                      else env.model)
    rc, out = check_config(env, ref)
    assert rc == 0, out
    # a missing file and starting on a bad config
    r = subprocess.run([env.echoviewd, '--check-config', '/nonexistent.yaml'], env=env.env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and '/nonexistent.yaml' in r.stderr, r.stderr
    # a device or a FIFO as the config path is refused at once (it would never end, or block)
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, 'fifo.yaml')
        os.mkfifo(fifo)
        for path in ('/dev/zero', fifo):
            r = subprocess.run([env.echoviewd, '--check-config', path], env=env.env,
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 1 and '%s: not a regular file' % path in r.stderr, r.stderr
    import tempfile
    with tempfile.NamedTemporaryFile('w', suffix='.yaml') as f:
        f.write('http: {port: x}\n')
        f.flush()
        r = subprocess.run([env.echoviewd, '--config', f.name], env=env.env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and ":1:14: 'port' must be an integer" in r.stderr, r.stderr


def raw(d, data, timeout=5):
    s = socket.create_connection(('127.0.0.1', d.port), timeout=timeout)
    s.sendall(data)
    out = b''
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def test_bad_requests(env):
    """Oversized headers, bodies, slow clients get their documented answers."""
    d = Daemon(env, BASE + 'streams:\n' + phantom_stream('local'))
    try:
        out = raw(d, b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ' + b'a' * 20000 + b'\r\n\r\n')
        assert out.startswith(b'HTTP/1.1 431'), out[:100]
        out = raw(d, b'GET /' + b'a' * 20000 + b' HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        assert out[:12] in (b'HTTP/1.1 414', b'HTTP/1.1 431'), out[:100]
        out = raw(d, b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n'
                  b'Connection: close\r\n\r\nhello')
        assert out.startswith(b'HTTP/1.1 413'), out[:100]
        out = raw(d, b'garbage\r\n\r\n')    # not HTTP: closed without an answer
        assert out == b'' or out.startswith(b'HTTP/1.1 400'), out[:100]
        # a slow client (half a request line, then silence) is closed after connection-timeout
        s = socket.create_connection(('127.0.0.1', d.port), timeout=10)
        s.sendall(b'GET /hea')
        t0 = time.monotonic()
        data = s.recv(100)
        elapsed = time.monotonic() - t0
        s.close()
        assert data == b'' and elapsed < 8, (data, elapsed)
        # and the server still answers
        assert d.get('/healthz')[0] == 200
    finally:
        d.stop()


def test_http_clients(env):
    """Keep-alive and pipelining; a second daemon on the same port fails; 200 slowloris and 200
    silent clients (from two other addresses) leave /healthz answering throughout and after."""
    import http.client
    config = BASE.replace('  connection-timeout: 2\n', '  connection-timeout: 30\n'
                          '  header-timeout: 2\n  connections-per-address: 16\n')
    d = Daemon(env, config + 'streams:\n' + phantom_stream('local'))
    hostile = []
    try:
        d.wait_state('local', 'running', 20)
        # keep-alive: three requests on one connection
        conn = http.client.HTTPConnection('127.0.0.1', d.port, timeout=5)
        sockets = []
        for path in ('/healthz', '/api/v1/streams', '/metrics'):
            conn.request('GET', path)
            r = conn.getresponse()
            r.read()
            assert r.status == 200 and not r.will_close, (path, r.getheaders())
            sockets.append(conn.sock)
        assert sockets[0] is sockets[1] is sockets[2]
        conn.close()
        # pipelining: three requests in one write, three answers in order
        out = raw(d, b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
                  b'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
                  b'GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
        statuses = [int(m) for m in re.findall(rb'(?:^|\n)HTTP/1\.1 (\d{3}) ', out)]
        assert statuses == [200, 200, 404], (statuses, out[:500])
        # a second daemon on the same port is refused, naming the port
        other = os.path.join(d.dir.name, 'second.yaml')
        with open(other, 'w') as f:
            f.write(config.replace('@HTTP_PORT@', str(d.port)).replace('@MODEL@', env.model)
                    + 'streams:\n' + phantom_stream('local'))
        r = subprocess.run([env.echoviewd, '--config', other], env=env.env, capture_output=True,
                           text=True, timeout=60)
        want = ('echoviewd: cannot listen on 127.0.0.1 port %d: Address already in use '
                '(another echoviewd or another server has it)' % d.port)
        assert r.returncode == 1 and want in r.stderr, (r.returncode, r.stderr[-2000:])
        # slowloris from 127.0.0.2 (a header line every 0.5 s, never the end), silent clients
        # from 127.0.0.3; /healthz from 127.0.0.1 is polled all the while
        for source in ['127.0.0.2'] * 200 + ['127.0.0.3'] * 200:
            sock = socket.socket()
            sock.settimeout(1)
            sock.bind((source, 0))
            try:
                sock.connect(('127.0.0.1', d.port))
                if source == '127.0.0.2':
                    sock.sendall(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n')
            except OSError:
                pass
            hostile.append((source, sock))
        failures, polls = [], 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 6:
            for i, (source, sock) in enumerate(hostile):
                if source == '127.0.0.2':
                    try:
                        sock.send(b'X-%d: y\r\n' % i)
                    except OSError:
                        pass
            try:
                status = d.get('/healthz', timeout=1)[0]
                if status != 200:
                    failures.append(status)
            except OSError as e:
                failures.append(repr(e))
            polls += 1
            time.sleep(0.2)
        assert not failures and polls >= 20, (failures, polls)
        cut = metric(d, 'echoviewd_http_header_timeouts_total')
        print('%d polls of /healthz answered; %d hostile connections cut at the header deadline'
              % (polls, cut))
        # 16 from each hostile address were accepted (the rest refused at accept), and cut
        assert cut == 32, cut
        for _, sock in hostile:
            sock.close()
        hostile = []
        assert d.get('/healthz', timeout=1)[0] == 200
        wait_until(lambda: metric(d, 'echoviewd_http_connections') == 1, 5,
                   what='the hostile connections gone')
        # 160 silent clients from ten addresses (16 each, the per-address limit) would fill the
        # 64 slots until the header deadline; the oldest idle ones are closed to make room
        assert metric(d, 'echoviewd_http_evicted_connections_total') == 0
        for a in range(10, 20):
            for _ in range(16):
                sock = socket.socket()
                sock.settimeout(1)
                sock.bind(('127.0.0.%d' % a, 0))
                try:
                    sock.connect(('127.0.0.1', d.port))
                except OSError:
                    pass
                hostile.append((a, sock))
        for _ in range(5):
            assert d.get('/healthz', timeout=1)[0] == 200
        evicted = metric(d, 'echoviewd_http_evicted_connections_total')
        print('%d of 160 idle connections evicted near connection-limit 64' % evicted)
        assert evicted >= 160 - 62, evicted
        for _, sock in hostile:
            sock.close()
        hostile = []
    finally:
        for _, sock in hostile:
            sock.close()
        d.stop()
    # beyond loopback without a token: a warning at start
    d = Daemon(env, config.replace('  port: @HTTP_PORT@\n', '  address: 0.0.0.0\n'
                                   '  port: @HTTP_PORT@\n') + 'streams:\n' + phantom_stream('local'))
    try:
        assert ('http: listening on 0.0.0.0 without a token: anyone who reaches this address '
                'reads the streams and their views (set http.token or http.token-file)'
                in d.log_text()), d.log_text()[-2000:]
    finally:
        for _, sock in hostile:
            sock.close()
        d.stop()


def test_reload(env):
    """SIGHUP adds and removes a stream and leaves the unchanged one running."""
    port = free_port(socket.SOCK_DGRAM)
    config = BASE + 'streams:\n' + phantom_stream('steady')
    d = Daemon(env, config)
    try:
        steady = d.wait_state('steady', 'running', 20)
        d.reload(config + phantom_stream('added'))
        d.wait_state('added', 'running', 20)
        after = d.stream('steady')
        assert after['state_since'] == steady['state_since'] and after['restarts'] == 0, after
        assert [s['id'] for s in d.json('/api/v1/streams')['streams']] == ['steady', 'added']
        d.reload(config)
        wait_until(lambda: d.get('/api/v1/streams/added')[0] == 404, 10, what='added removed')
        assert d.stream('steady')['state_since'] == steady['state_since']
        # a changed stream restarts; a broken config is refused and the old one kept
        d.reload(config.replace('framerate: 10', 'framerate: 12'))
        wait_until(lambda: d.stream('steady')['state_since'] != steady['state_since'], 10,
                   what='changed stream restarted')
        d.wait_state('steady', 'running', 20)
        d.reload(config + 'bogus: 1\n')
        wait_until(lambda: 'reload failed' in d.log_text(), 10, what='reload refused')
        # the old configuration is kept: the same streams, and steady running (on a loaded
        # machine it may stall for a moment under its 1 s stall timeout, so wait for it)
        assert d.alive()
        assert [s['id'] for s in d.json('/api/v1/streams')['streams']] == ['steady']
        d.wait_state('steady', 'running', 20)
    finally:
        d.stop()


def test_socket_activation(env):
    """Under systemd-socket-activate the API answers on the inherited socket, not the config's."""
    if not os.access(SOCKET_ACTIVATE, os.X_OK):
        print('%s not found (Debian package systemd)' % SOCKET_ACTIVATE)
        return SKIP
    d = Daemon(env, BASE + 'streams:\n' + phantom_stream('local'), socket_activation=True)
    try:
        assert d.json('/healthz') == {'status': 'ok'}
        status = d.json('/api/v1/status')
        assert status['streams']['configured'] == 1 and status['model']['loaded'], status
        d.wait_state('local', 'running', 20)
        assert [s['id'] for s in d.json('/api/v1/streams')['streams']] == ['local']
        assert d.get('/nope')[0] == 404
        # http.port of the config is not opened when the socket comes from systemd
        probe = socket.socket()
        try:
            assert probe.connect_ex(('127.0.0.1', d.config_port)) != 0, 'config port is open'
        finally:
            probe.close()
        assert 'http://(socket activation):%d/' % d.port in d.log_text(), d.log_text()
    finally:
        d.stop()
    # a datagram socket (ListenDatagram= by mistake) is refused with a message, exit 1
    import tempfile
    port = free_port(socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, 'echoviewd.yaml')
        with open(config, 'w') as f:
            f.write((BASE + 'streams:\n' + phantom_stream('local'))
                    .replace('@HTTP_PORT@', str(free_port())).replace('@MODEL@', env.model))
        proc = subprocess.Popen([SOCKET_ACTIVATE, '--datagram', '--listen=127.0.0.1:%d' % port,
                                 '--setenv=GST_PLUGIN_PATH', env.echoviewd, '--config', config],
                                env=env.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            # it execs echoviewd on the first datagram
            def exited():
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.sendto(b'x', ('127.0.0.1', port))
                return proc.poll() is not None
            wait_until(exited, 20, interval=0.5, what='echoviewd to refuse a datagram socket')
            out = proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        assert proc.returncode == 1 and 'not a listening stream socket' in out, (proc.returncode,
                                                                                 out)


def test_own_classes(env):
    """A model of one's own classes (`echoview train --classes`, accents and spaces, `other`):
    the stream's view has probabilities over exactly those classes and a label among them."""
    echoview = os.environ.get('ECHOVIEW')
    if not echoview or not os.access(echoview, os.X_OK):
        print('skip: no echoview binary (ECHOVIEW)')
        return SKIP
    own = ['Vue 4 cavités', 'PLAX', 'other']
    with tempfile.TemporaryDirectory() as tmp:
        ph = os.path.join(tmp, 'ph')
        subprocess.run([echoview, 'phantom', '--out', ph, '--size', '16', '--patients', '5',
                        '--frames-per-patient', '1', '--seed', '4', '--threads', '2'],
                       capture_output=True, check=True)
        lines = open(os.path.join(ph, 'manifest.csv')).read().splitlines()
        with open(os.path.join(ph, 'own.csv'), 'w', encoding='utf-8') as f:
            f.write(lines[0] + '\n')
            for line in lines[1:]:
                cols = line.split(',')
                cols[1] = own[0] if cols[1].startswith('A4CH') else \
                    own[1] if cols[1].startswith('PLAX') else own[2]
                f.write(','.join(cols) + '\n')
        model = os.path.join(tmp, 'm')
        r = subprocess.run([echoview, 'train', '--data', os.path.join(ph, 'own.csv'), '--out',
                            model, '--size', '16', '--init-channels', '4', '--layout',
                            'normal,reduce', '--epochs', '1', '--batch', '6', '--threads', '2',
                            '--steps-per-epoch', '2', '--classes', ','.join(own), '--quiet'],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        d = Daemon(env, BASE.replace('@MODEL@', model) + 'streams:\n' + phantom_stream('local'))
        try:
            d.wait_state('local', 'running', 20)
            view = wait_until(lambda: d.stream('local')['view'].get('probabilities') and
                              d.stream('local')['view'], 20, what='a classified frame')
            assert sorted(view['probabilities']) == sorted(own), view
            assert view['label'] in own and abs(sum(view['probabilities'].values()) - 1) < 1e-3, \
                view
        finally:
            d.stop()


def test_async_latency(env):
    """With the classifier in async mode the stream's latency_ms still has samples: one per
    buffer that brings a new result (the meta's `inferred`, which marked none in async mode)."""
    config = BASE.replace('  roi: full\n', '  roi: full\n  async: true\n')
    d = Daemon(env, config + 'streams:\n' + phantom_stream('local'))
    try:
        d.wait_state('local', 'running', 20)
        st = wait_until(lambda: (s := d.stream('local'))['latency_ms']['window'] >= 3 and s, 30,
                        what='latency samples in async mode')
        print('async: %d frames, %d inferred, latency_ms %s' % (st['frames'], st['inferred'],
                                                                st['latency_ms']))
        assert 0 < st['latency_ms']['p50'] <= st['latency_ms']['p99'], st['latency_ms']
    finally:
        d.stop()


TESTS = {
    'config': test_config,
    'endpoints': test_endpoints,
    'events': test_events,
    'stall': test_stall_and_recovery,
    'hostile': test_hostile_input,
    'frame-checks': test_frame_checks,
    'dropped': test_dropped_counter,
    'diagnostics': test_diagnostics,
    'degraded': test_degraded,
    'low-fps': test_low_fps,
    'ingress': test_ingress,
    'sdp-packets': test_sdp_packets,
    'snapshot': test_snapshot,
    'tls': test_tls,
    'bad-requests': test_bad_requests,
    'http-clients': test_http_clients,
    'reload': test_reload,
    'socket-activation': test_socket_activation,
    'own-classes': test_own_classes,
    'async-latency': test_async_latency,
}

if __name__ == '__main__':
    sys.exit(run_main(TESTS, sys.argv))
