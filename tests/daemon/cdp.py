"""cdp.py: headless Chromium driven over the DevTools protocol (Python 3 stdlib only).

Browser starts `chromium --headless=new` with its own profile folder and
--remote-debugging-port=0, reads the port Chromium chose from DevToolsActivePort, opens a tab
on a URL and talks to it over the tab's WebSocket (RFC 6455 client frames: masked, text,
unfragmented; the answers may be fragmented). evaluate() runs an expression in the page and
returns its value; screenshot() returns a PNG. Every wait is bounded in time.
"""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request


def find_chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        path = shutil.which(name)
        if path:
            return path
    return None



class CdpError(OSError):
    """A DevTools call answered with an error, or a page script threw (e.g. while a page is
    still loading or redrawing): an OSError, so tests' wait_until retries it until its timeout."""

class WebSocket:
    """The client end of one WebSocket connection (ws:// on loopback)."""

    def __init__(self, url, timeout):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = ('GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                   'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n'
                   % (u.path, u.hostname, u.port, key))
        self.sock.sendall(request.encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise OSError('DevTools closed the connection during the WebSocket handshake')
            head += chunk
        if not head.startswith(b'HTTP/1.1 101'):
            raise OSError('DevTools refused the WebSocket: %r' % head.split(b'\r\n')[0])

    def send_text(self, text):
        payload = text.encode()
        header = bytes([0x81])                              # FIN, text
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack('!H', n)
        else:
            header += bytes([0x80 | 127]) + struct.pack('!Q', n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n):
        data = b''
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise OSError('DevTools closed the WebSocket')
            data += chunk
        return data

    def receive_text(self):
        message = b''
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack('!H', self._read(2))[0]
            elif n == 127:
                n = struct.unpack('!Q', self._read(8))[0]
            payload = self._read(n)                         # servers do not mask
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise OSError('DevTools closed the WebSocket')
            if opcode in (0x9, 0xA):                        # ping/pong: not used by DevTools
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()

    def close(self):
        self.sock.close()


class Browser:
    def __init__(self, chromium, width=1280, height=900, timeout=30):
        self.profile = tempfile.TemporaryDirectory(prefix='echoview-chromium-', ignore_cleanup_errors=True)
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [chromium, '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--no-default-browser-check', '--disable-extensions', '--mute-audio',
             '--remote-debugging-port=0', '--remote-debugging-address=127.0.0.1',
             '--user-data-dir=' + self.profile.name, '--window-size=%d,%d' % (width, height),
             'about:blank'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = os.path.join(self.profile.name, 'DevToolsActivePort')
        deadline = time.monotonic() + timeout
        while not (os.path.exists(active) and open(active).read().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise OSError('chromium did not open its DevTools port')
            time.sleep(0.1)
        self.port = int(open(active).read().split()[0])
        self.ws = None
        self.next_id = 0

    def open(self, url):
        """Opens url in a new tab and attaches to it."""
        req = urllib.request.Request('http://127.0.0.1:%d/json/new?%s'
                                     % (self.port, urllib.parse.quote(url, safe=':/?=&')),
                                     method='PUT')
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            target = json.load(r)
        self.ws = WebSocket(target['webSocketDebuggerUrl'], self.timeout)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if self.evaluate('document.readyState') == 'complete' and \
                        self.evaluate('location.href') == url:
                    break
            except CdpError:
                pass  # the tab is still navigating away from about:blank
            if time.monotonic() > deadline:
                raise OSError('%s did not load within %d s' % (url, self.timeout))
            time.sleep(0.1)

    def call(self, method, **params):
        self.next_id += 1
        mine = self.next_id
        self.ws.send_text(json.dumps({'id': mine, 'method': method, 'params': params}))
        while True:
            message = json.loads(self.ws.receive_text())
            if message.get('id') == mine:
                if 'error' in message:
                    raise CdpError('%s: %s' % (method, message['error']))
                return message.get('result', {})

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.call('Runtime.evaluate', expression=expression, returnByValue=True,
                           awaitPromise=True)
        if 'exceptionDetails' in result:
            raise CdpError('page script failed: %s' % result['exceptionDetails'].get('text'))
        return result['result'].get('value')

    def screenshot(self):
        return base64.b64decode(self.call('Page.captureScreenshot', format='png')['data'])

    def close(self):
        if self.ws:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.profile.cleanup()
