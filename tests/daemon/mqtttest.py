"""mqtttest.py: helpers for the MQTT tests of echoviewd (Python 3 stdlib and the mosquitto
Debian packages: the broker and mosquitto_sub).

Broker: a mosquitto broker on a free loopback port with a generated config (optionally with a
password file and persistence, so that a persistent subscriber keeps its queued messages over
a broker restart); stop() and start() again on the same port.
Subscriber: mosquitto_sub on a thread collecting (retained, topic, payload) lines.
Events: /api/v1/events of a daemon on a thread, the stream events it sent.
DropServer: a TCP server that accepts MQTT clients and drops them, before or after CONNACK.
Every wait is bounded in time; without the mosquitto binaries the tests skip (77).
"""
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from evdtest import SKIP, free_port, wait_until

MOSQUITTO = shutil.which('mosquitto') or '/usr/sbin/mosquitto'
MOSQUITTO_SUB = shutil.which('mosquitto_sub')
MOSQUITTO_PASSWD = shutil.which('mosquitto_passwd')


def have_mosquitto():
    if not os.access(MOSQUITTO, os.X_OK) or not MOSQUITTO_SUB:
        print('skip: no mosquitto broker or mosquitto_sub (Debian packages mosquitto and '
              'mosquitto-clients)')
        return False
    return True


def require_mosquitto():
    if not have_mosquitto():
        sys.exit(SKIP)


class Broker:
    def __init__(self, users=None, persistence=False, tls=None):
        self.dir = tempfile.TemporaryDirectory(prefix='evd-mqtt-broker-')
        self.port = free_port()
        self.conf = os.path.join(self.dir.name, 'mosquitto.conf')
        # run as root, mosquitto would switch to the user mosquitto, who cannot write here
        lines = ['listener %d 127.0.0.1' % self.port, 'log_dest stdout', 'log_type all',
                 'user ' + getpass.getuser()]
        if tls:   # (certificate, key): a TLS listener
            lines += ['certfile ' + tls[0], 'keyfile ' + tls[1]]
        if users:
            pw = os.path.join(self.dir.name, 'passwords')
            open(pw, 'w').close()
            for user, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, '-b', pw, user, password], check=True,
                               capture_output=True, timeout=30)
            lines += ['allow_anonymous false', 'password_file ' + pw]
        else:
            lines += ['allow_anonymous true']
        if persistence:
            lines += ['persistence true', 'persistence_location %s/' % self.dir.name,
                      'autosave_interval 1']
        else:
            lines += ['persistence false']
        with open(self.conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        self.log = open(os.path.join(self.dir.name, 'log'), 'a+')
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, '-c', self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def listening():
            assert self.proc.poll() is None, 'mosquitto exited:\n' + self.log_text()[-2000:]
            with socket.create_connection(('127.0.0.1', self.port), timeout=1):
                return True
        wait_until(listening, 20, what='mosquitto listening on %d' % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def close(self):
        self.stop()
        self.log.close()
        self.dir.cleanup()


class Subscriber:
    """mosquitto_sub -F '%r %t %p': one line per message, payloads are compact JSON or a word.
    With client_id, a persistent QoS 1 session (the broker keeps messages for it while it is
    away); it reconnects by itself when the broker comes back."""

    def __init__(self, broker, topic='echoview/#', client_id=None, count=None, user=None,
                 cafile=None):
        argv = [MOSQUITTO_SUB, '-h', '127.0.0.1', '-p', str(broker.port), '-t', topic, '-q', '1',
                '-F', '%r %t %p']
        if client_id:
            argv += ['-i', client_id, '-c']
        if count:
            argv += ['-C', str(count)]
        if user:
            argv += ['-u', user[0], '-P', user[1]]
        if cafile:
            argv += ['--cafile', cafile]
        self.messages = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            parts = line.rstrip('\n').split(' ', 2)
            if len(parts) < 3:
                continue
            retained, topic, payload = parts
            try:
                value = json.loads(payload)
            except ValueError:
                value = payload
            with self.lock:
                self.messages.append((retained == '1', topic, value))

    def copy(self):
        with self.lock:
            return list(self.messages)

    def topic(self, topic):
        return [v for _, t, v in self.copy() if t == topic]

    def wait(self, predicate, timeout, what):
        return wait_until(lambda: predicate(self.copy()), timeout, what=what)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.thread.join(5)


class Events:
    """/api/v1/events on a thread: [(event, data)] for the stream events (not `stats`)."""

    def __init__(self, d):
        self.sock = socket.create_connection(('127.0.0.1', d.port), timeout=5)
        self.sock.sendall(b'GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        self.events = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        buf = b''
        self.sock.settimeout(0.5)
        while not self.stopping:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b'\n\n' in buf:
                block, buf = buf.split(b'\n\n', 1)
                ev, data = None, None
                for line in block.decode(errors='replace').split('\n'):
                    if line.startswith('event: '):
                        ev = line[7:]
                    elif line.startswith('data: '):
                        data = json.loads(line[6:])
                if ev and ev not in ('stats', 'hello') and data:
                    with self.lock:
                        self.events.append((ev, data))

    def copy(self):
        with self.lock:
            return list(self.events)

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


class DropServer:
    """A TCP server on a free loopback port that takes MQTT clients and drops them: with
    connack=True after sending a CONNACK and reading their first PUBLISH (a broker dying
    mid-publish), else right after the CONNECT."""

    def __init__(self, connack):
        self.connack = connack
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port()
        self.sock.bind(('127.0.0.1', self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.settimeout(5)
            try:
                conn.recv(4096)                      # CONNECT
                if self.connack:
                    conn.sendall(b'\x20\x02\x00\x00')  # CONNACK, accepted
                    conn.recv(64)                    # the first bytes of a PUBLISH
            except OSError:
                pass
            conn.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


def mqtt_section(broker_port, extra='', delays=(0.2, 1)):
    return """\
mqtt:
  broker: mqtt://127.0.0.1:%d
  keepalive: 5
  reconnect-delay: %s
  reconnect-delay-max: %s
%s""" % (broker_port, delays[0], delays[1], extra)


def metric_value(d, name):
    """The value of an unlabelled (but for instance) sample of /metrics."""
    status, _, body = d.get('/metrics')
    assert status == 200
    for line in body.decode().split('\n'):
        if line.startswith(name + '{') or line.startswith(name + ' '):
            return float(line.rsplit(' ', 1)[1])
    raise AssertionError('no %s in /metrics' % name)
