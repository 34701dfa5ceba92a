"""evdtest.py: helpers for the echoviewd integration tests (Python 3 stdlib only).

Daemon: writes a config, starts echoviewd on free loopback ports, waits for /healthz, answers
HTTP requests, stops it (SIGTERM) and checks that it exited with status 0. With
socket_activation, systemd-socket-activate listens on the port and hands the socket over
(LISTEN_FDS), while the config names another port that must stay closed.
RtpRawSender: an RFC 4175 sender (RGB, one line per packet) on a thread, whose colour, frame
size and pace the test controls, plus garbage packets.
Every wait is bounded in time; skips exit 77.
"""
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
from testlib import free_port  # noqa: E402,F401 (re-exported to the daemon tests)

SKIP = 77
SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate'


def base_config(http='', stall_timeout=1,
                classifier='  roi: full\n  smoothing: 1\n  hysteresis: 2\n'):
    """The sections a test config starts with (its streams: follow): http on @HTTP_PORT@ with
    the extra http lines given, a quick supervisor (stalled after stall_timeout s without
    frames, restarts 0.2 s to 1 s apart) and @MODEL@ on the CPU with the classifier lines given
    (by default: the whole frame, no smoothing, hysteresis 2). Daemon fills in the two."""
    return ('http:\n  port: @HTTP_PORT@\n%s'
            'supervision:\n  stall-timeout: %s\n  restart-delay: 0.2\n  restart-delay-max: 1\n'
            'classifier:\n  model-file: @MODEL@\n  backend: cpu\n%s'
            % (http, stall_timeout, classifier))


def drop_instance(text, instance=None):
    """A /metrics body without its instance labels (every sample line must carry one)."""
    instance = instance or Daemon.INSTANCE
    label = 'instance="%s"' % instance
    for line in text.split('\n'):
        assert not line or line.startswith('#') or label in line, (label, line)
    return text.replace('{%s}' % label, '').replace(label + ',', '')



def self_signed(openssl, folder, names=('a', 'b')):
    """A self-signed certificate for 127.0.0.1 per name (openssl req -x509, 2 days): {name:
    (cert.pem, key.pem)} in folder."""
    pem = {}
    for name in names:
        pem[name] = (os.path.join(folder, name + '-cert.pem'),
                     os.path.join(folder, name + '-key.pem'))
        subprocess.run([openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                        '-keyout', pem[name][1], '-out', pem[name][0]],
                       check=True, capture_output=True, timeout=60)
    return pem

def wait_until(predicate, timeout, interval=0.1, what='condition'):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, http.client.HTTPException, ValueError, AssertionError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError('timed out after %.1f s waiting for %s (last: %r)' % (timeout, what, last))


class Env:
    """Paths from the command line: echoviewd, the plugin folder, the source root."""

    def __init__(self, argv):
        self.echoviewd, self.plugin_dir, self.source_root = map(os.path.abspath, argv[1:4])
        self.args = argv[4:]
        real = os.path.join(self.source_root, 'models', 'echo-2cell-96')
        fixture = os.path.join(self.source_root, 'tests', 'fixtures', 'golden', 'darts_v2_nrnr_g1')
        self.model = fixture
        self.real_model = real if os.path.exists(os.path.join(real, 'model.yaml')) else None
        self.env = dict(os.environ, GST_PLUGIN_PATH=self.plugin_dir,
                        GST_REGISTRY=os.path.join(tempfile.gettempdir(),
                                                  'echoviewd-test-registry-%d.bin' % os.getuid()))
        self.env.pop('NOTIFY_SOCKET', None)
        self.env.pop('LISTEN_FDS', None)


class Daemon:
    running = set()
    logs = []

    INSTANCE = 'evdtest'

    def __init__(self, env, config_text, token=None, socket_activation=False, tls_ca=None,
                 args=(), instance=INSTANCE, extra_env=None, port=None):
        self.env = env
        self.dir = tempfile.TemporaryDirectory(prefix='echoviewd-test-')
        self.config = os.path.join(self.dir.name, 'echoviewd.yaml')
        self.port = port or free_port()
        # the port the config names: the served one, unless the socket comes from systemd
        self.config_port = free_port() if socket_activation else self.port
        self.token = token
        self.ssl = None
        if tls_ca:   # HTTPS, trusting this certificate
            import ssl
            self.ssl = ssl.create_default_context(cafile=tls_ca)
        self.write_config(config_text)
        self.log = open(os.path.join(self.dir.name, 'log'), 'w+')
        self.instance = instance
        argv = [env.echoviewd, '--config', self.config] + (['--instance', instance] if instance
                                                            else []) + list(args)
        if socket_activation:
            # systemd-socket-activate passes on only the variables named with -E
            names = [k for k in env.env if k.startswith(('GST_', 'G_', 'ASAN_', 'UBSAN_', 'LSAN_',
                                                          'LD_', 'ORC_'))]
            argv = ([SOCKET_ACTIVATE, '--listen=127.0.0.1:%d' % self.port]
                    + ['--setenv=' + k for k in sorted(names)] + argv)
        self.proc = subprocess.Popen(argv, env=dict(env.env, **(extra_env or {})), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        Daemon.running.add(self)
        try:
            wait_until(lambda: self.get('/healthz')[0] == 200, 20, what='/healthz')
        except AssertionError:
            self.stop(check=False)
            print(self.log_text())
            raise

    def write_config(self, text):
        with open(self.config, 'w') as f:
            f.write(text.replace('@HTTP_PORT@', str(self.config_port))
                    .replace('@MODEL@', self.env.model))

    def reload(self, text):
        self.write_config(text)
        self.proc.send_signal(signal.SIGHUP)

    def request(self, method, path, headers=None, token=True, timeout=10):
        if self.ssl:
            conn = http.client.HTTPSConnection('127.0.0.1', self.port, timeout=timeout,
                                               context=self.ssl)
        else:
            conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        h = dict(headers or {})
        if token and self.token:
            h['Authorization'] = 'Bearer ' + self.token
        conn.request(method, path, headers=h)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body

    def get(self, path, **kw):
        status, headers, body = self.request('GET', path, **kw)
        return status, headers, body

    def json(self, path, expect=200, **kw):
        status, headers, body = self.get(path, **kw)
        assert status == expect, '%s: status %d, want %d: %r' % (path, status, expect, body[:300])
        assert headers['content-type'].startswith('application/json'), headers
        return json.loads(body)

    def stream(self, sid):
        return self.json('/api/v1/streams/' + sid)

    def wait_state(self, sid, state, timeout):
        return wait_until(lambda: self.stream(sid)['state'] == state and self.stream(sid), timeout,
                          what='stream %s %s' % (sid, state))

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, check=True):
        Daemon.running.discard(self)
        try:
            Daemon.logs.append(self.log_text())
        except ValueError:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError('echoviewd did not stop within 15 s of SIGTERM')
        if check:
            assert self.proc.returncode == 0, 'echoviewd exited with %d:\n%s' % (
                self.proc.returncode, self.log_text()[-3000:])
        self.log.close()
        self.dir.cleanup()


class RtpRawSender:
    """RFC 4175 RGB frames of one colour, one line per packet, to 127.0.0.1:port. Odd frames
    are 8 levels darker (brighter for dark colours) than even ones, as a live image changes
    from frame to frame; frozen=True sends the same frame over and over (a freeze button)."""

    FLICKER = 8

    def __init__(self, port, width=64, height=48, fps=30, colour=(255, 255, 255),
                 source='127.0.0.1', ssrc=0x4543484f):
        self.port, self.width, self.height, self.fps, self.colour = port, width, height, fps, colour
        self.ssrc = ssrc
        self.paused = False
        self.frozen = False
        self.payload = 96
        self.loss = 0.0          # share of packets not sent (their sequence numbers are used)
        self.rng = random.Random(4175)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.seq = 0
        self.frames = 0
        self.ts_base = self.ts_frame = 0   # the RTP clock goes on where a rate change left it
        self.new_fps = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def packets(self):
        w, h = self.width, self.height
        colour = self.colour
        if self.frames % 2 and not self.frozen:
            colour = [c - self.FLICKER if c >= 128 else c + self.FLICKER for c in colour]
        line = bytes(colour) * w
        ts = (self.ts_base + (self.frames - self.ts_frame) * 90000 // self.fps) & 0xffffffff
        for y in range(h):
            marker = 0x80 if y == h - 1 else 0
            hdr = struct.pack('!BBHII', 0x80, marker | self.payload, self.seq & 0xffff, ts,
                              self.ssrc)
            ext = struct.pack('!H', (self.seq >> 16) & 0xffff)
            self.seq += 1
            yield hdr + ext + struct.pack('!HHH', len(line), y & 0x7fff, 0) + line

    def set_fps(self, fps):
        """Sends at another rate from the next frame on (no burst to catch up)."""
        self.new_fps = fps

    def run(self):
        t0 = time.monotonic()
        while not self.stopping.is_set():
            if self.new_fps:
                self.ts_base += (self.frames - self.ts_frame) * 90000 // self.fps
                self.ts_frame = self.frames
                self.fps, self.new_fps = self.new_fps, None
                t0 = time.monotonic() - self.frames / self.fps
            if not self.paused:
                for p in self.packets():
                    if self.loss and self.rng.random() < self.loss:
                        continue
                    self.sock.sendto(p, ('127.0.0.1', self.port))
                self.frames += 1
            else:
                t0 = time.monotonic() - self.frames / self.fps
            delay = t0 + self.frames / self.fps - time.monotonic()
            self.stopping.wait(max(delay, 0.001))

    def garbage(self, count=200):
        rnd = open('/dev/urandom', 'rb')
        for i in range(count):
            n = [0, 1, 11, 12, 14, 20, 600, 1400][i % 8]
            data = rnd.read(n)
            if i % 3 == 0 and n >= 20:   # a valid RTP header with a hostile payload header
                data = struct.pack('!BBHII', 0x80, 96, i, i, 1) + data[12:]
            self.sock.sendto(data, ('127.0.0.1', self.port))
        rnd.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


def run_main(tests, argv):
    """Runs the named test functions (all when none named); prints a line per test."""
    env = Env(argv)
    if not os.access(env.echoviewd, os.X_OK):
        print('echoviewd not built')
        return SKIP
    names = env.args or list(tests)
    failed = 0
    for name in names:
        t0 = time.monotonic()
        Daemon.logs = []
        try:
            r = tests[name](env)
            print('%s: %s (%.1f s)' % (name, 'skipped' if r == SKIP else 'ok',
                                       time.monotonic() - t0), flush=True)
            if r == SKIP and len(names) == 1:
                return SKIP
        except Exception as e:
            import traceback
            traceback.print_exc()
            for log in Daemon.logs:
                print('--- echoviewd log (last 4000 bytes) ---\n' + log[-4000:])
            print('%s: FAILED: %s' % (name, e), flush=True)
            failed += 1
    return 1 if failed else 0
