"""test_bridge.py: echoview-dicom-bridge, the C-STORE receiver (suite dicom), and the whole chain
(suite e2e). Cases:
  config   --check-config: the reference config passes; bad files fail with file:line:column
  bridge   routing by calling AE title; refused AE titles, SOP classes and transfer syntaxes;
           lying lengths, a truncated data set, an A-ABORT and a dropped connection mid-transfer:
           each answered and logged, no file left in the spool; then a good loop still arrives
           over RTP pixel for pixel; SIGTERM stops it with status 0
  tls      listen.tls with a CA, server and client certificates made by openssl: a TLS store
           streams; a plaintext, an anonymous-TLS and a foreign-CA client are refused and
           logged; bad TLS files are refused by --check-config and at start
  e2e      phantom DICOM -> storescu -> bridge -> RTP on loopback -> echoviewd (sdp source) ->
           /api/v1/streams/{id} reports the loop's ground-truth view
Usage: test_bridge.py TEST_DICOMSRC ECHOVIEW BRIDGE SOURCE_ROOT CASE [ECHOVIEWD PLUGIN_DIR]."""
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
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
import dul  # noqa: E402
from dicomtest import finish, receiver, tool  # noqa: E402
from testlib import free_port  # noqa: E402

SKIP = 77
PYDICOM = '/usr/lib/python3/dist-packages/pydicom/data/test_files'
test_bin, echoview, bridge_bin, root, case = \
    [os.path.abspath(a) for a in sys.argv[1:5]] + [sys.argv[5]]
extra = sys.argv[6:]


def run(*args, check=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError('%s failed (%d): %s%s' % (' '.join(map(str, args)), r.returncode,
                                                       r.stdout, r.stderr))
    return r


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError('timed out after %.0f s waiting for %s' % (timeout, what))


def phantom_loop(tmp, view, frames=6, size='160x120', seed=3):
    out = os.path.join(tmp, 'ph-' + view.replace('/', '-'))
    run(echoview, 'phantom', '--format', 'dicom', '--out', out, '--patients', '1', '--views',
        view, '--frames-per-patient', str(frames), '--full-frame', size, '--seed', str(seed))
    rows = open(os.path.join(out, 'manifest.csv')).read().split()
    rel, label, _, _, _, x, y, w, h = rows[1].split(',')
    return os.path.join(out, rel), label, '%s,%s,%s,%s' % (x, y, w, h)


class Bridge:
    def __init__(self, tmp, destinations, port=None, log_name='bridge.log', listen='',
                 top=''):
        self.port = port or free_port()
        self.spool = os.path.join(tmp, 'spool')
        self.config = os.path.join(tmp, 'bridge.yaml')
        with open(self.config, 'w') as f:
            f.write('listen: {port: %d, ae-title: ECHOVIEW, acse-timeout: 5, dimse-timeout: 5%s}\n'
                    'spool: %s\n%sdestinations:\n%s'
                    % (self.port, listen, self.spool, top, destinations))
        self.log_path = os.path.join(tmp, log_name)
        self.log = open(self.log_path, 'w+')
        self.proc = subprocess.Popen([bridge_bin, '--config', self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_until(lambda: 'listening on 127.0.0.1:%d' % self.port in self.text(), 20,
                   'the bridge')

    def text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def expect(self, line, timeout=10):
        wait_until(lambda: line in self.text(), timeout, 'bridge log line %r' % line)
        print('bridge logged: %s' % line)

    def spool_files(self, under=''):
        """The files in the spool (received loops wait in queued/<AE>/), relative paths."""
        top = os.path.join(self.spool, under)
        return sorted(os.path.relpath(os.path.join(d, f), self.spool)
                      for d, _, files in os.walk(top) for f in files)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError('the bridge did not stop within 10 s of SIGTERM')
        return self.proc.returncode


def storescu(port, path, calling='SCANNER1', called='ECHOVIEW'):
    # -R: propose only the file's SOP class, as a scanner sending one loop does.
    return run(tool('storescu'), '-R', '-aet', calling, '-aec', called, '127.0.0.1', port, path,
               check=False)


def config_case(tmp):
    r = run(bridge_bin, '--check-config', os.path.join(root, 'conf', 'echoview-dicom-bridge.yaml'))
    assert r.stdout.strip().endswith(': ok (2 destination(s))'), r.stdout
    bad = [('destinations:\n  - {calling-ae: A, port: 0}\n',
            "bad.yaml:2:27: 'port' must be between 1 and 65535, not 0"),
           ('destinations:\n  - {calling-ae: A, port: 5004, encoding: vp9}\n',
            "bad.yaml:2:43: 'encoding' must be raw, h264 or jpeg, got 'vp9'"),
           ('destinations:\n  - {calling-ae: A, port: 5004}\n  - {calling-ae: A, port: 5006}\n',
            "bad.yaml:3:5: calling-ae 'A' has two destinations"),
           ('listen: {port: 104, colour: red}\ndestinations: []\n',
            "bad.yaml:1:21: unknown key 'colour' in 'listen' (expected one of: port, ae-title, "
            "acse-timeout, dimse-timeout, bind-address, max-associations, idle-timeout, tls)"),
           ('listen: {tls: {certificate: a.pem}}\n',
            "bad.yaml:1:15: 'tls' needs 'certificate' and 'key' (PEM files)"),
           ('listen: {tls: {certificate: a.pem, key: a.key, require-client-cert: true}}\n',
            "bad.yaml:1:15: 'require-client-cert' needs 'ca' (the PEM file of the CAs that "
            "sign the scanners' certificates)"),
           ('listen: {tls: {certificate: a.pem, key: a.key, colour: red}}\n',
            "bad.yaml:1:48: unknown key 'colour' in 'tls' (expected one of: certificate, key, "
            "ca, require-client-cert)"),
           ('listen: {bind-address: scanner-vlan.local}\n',
            "bad.yaml:1:24: 'bind-address' must be a numeric IPv4 address (127.0.0.1, 0.0.0.0 "
            "for every interface), got 'scanner-vlan.local'"),
           ('listen: {max-associations: 0}\n',
            "bad.yaml:1:28: 'max-associations' must be between 1 and 64, not 0"),
           ('listen: {idle-timeout: 0}\n',
            "bad.yaml:1:24: 'idle-timeout' must be between 1 and 3600, not 0"),
           ('spool-max-mb: -1\n',
            "bad.yaml:1:15: 'spool-max-mb' must be between 0 and 1048576, not -1"),
           ('listen: {ae-title: THIS-TITLE-IS-TOO-LONG}\n',
            "bad.yaml:1:20: 'ae-title' must be at most 16 characters, without '\\'"),
           ('spool: /tmp\n', 'bad.yaml: no destinations: nothing would be streamed'),
           ('spool: &s /tmp\ndestinations:\n  - {calling-ae: *s, port: 1}\n',
            'bad.yaml:1:8: aliases are not supported'),
           ('destinations: [\n', 'bad.yaml:2:1: did not find expected node content'),
           ('', 'bad.yaml:1:1: the file is empty'),
           # the YAML reader's rules (base/ev_yaml.h), as in echoviewd and model.yaml
           ('destinations:\n  - {calling-ae: A, port: 5004}\n---\nspool: /tmp\n',
            'bad.yaml:3:1: a second YAML document starts here; give one document per file'),
           (b'spool: /tmp/\xff\ndestinations:\n  - {calling-ae: A, port: 5004}\n',
            'bad.yaml:1:13: invalid leading UTF-8 octet (0xFF; the file must be UTF-8)'),
           ('destinations:\n  - {calling-ae: A, port: 5004, loop: yes}\n',
            "bad.yaml:2:39: 'loop' must be true or false, not 'yes'"),
           ('destinations:\n  - {calling-ae: A, port: 5004, sdp: ' + '[' * 40 + ']' * 40 + '}\n',
            'bad.yaml:2:67: nested deeper than 32 levels')]
    for text, want in bad:
        path = os.path.join(tmp, 'bad.yaml')
        with open(path, 'wb') as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        r = run(bridge_bin, '--check-config', path, check=False)
        got = r.stderr.strip().replace(tmp + '/', '')
        assert r.returncode == 1 and got == 'echoview-dicom-bridge: ' + want, (got, want)
        print('refused: %s' % want)


def bridge_case(tmp):
    tool('storescu')
    loop, _, _ = phantom_loop(tmp, 'A4CH-LV')
    rtp_port = free_port(socket.SOCK_DGRAM)
    sdp = os.path.join(tmp, 'scanner1.sdp')
    b = Bridge(tmp, '  - {calling-ae: SCANNER1, port: %d, width: 160, height: 120, sdp: %s}\n'
               % (rtp_port, sdp))
    try:
        # Refused at association: unknown station, wrong called AE, wrong SOP class, a
        # transfer syntax we cannot decode.
        r = storescu(b.port, loop, calling='OTHER')
        assert r.returncode != 0 and 'Calling AE Title Not Recognized' in r.stderr, r.stderr
        b.expect("association refused: no destination for calling AE title 'OTHER'")
        r = storescu(b.port, loop, called='PACS')
        assert r.returncode != 0 and 'Called AE Title Not Recognized' in r.stderr, r.stderr
        b.expect("association refused: called AE title 'PACS' is not ours ('ECHOVIEW')")
        if os.path.isdir(PYDICOM):
            r = storescu(b.port, os.path.join(PYDICOM, 'CT_small.dcm'))
            assert r.returncode != 0 and 'Association Rejected' in r.stderr, r.stderr
            b.expect('refusing SOP class 1.2.840.10008.5.1.4.1.1.2 from SCANNER1: only US '
                     'Multi-frame and US Image Storage are accepted')
            j2k = os.path.join(tmp, 'j2k_us.dcm')
            shutil.copy(os.path.join(PYDICOM, 'JPEG2000.dcm'), j2k)
            run(tool('dcmodify'), '-nb', '-m', '(0008,0016)=1.2.840.10008.5.1.4.1.1.6.1', j2k)
            # -xw: propose the file's own JPEG 2000 (storescu cannot convert it to ours).
            r = run(tool('storescu'), '-R', '-xw', '-aet', 'SCANNER1', '-aec', 'ECHOVIEW',
                    '127.0.0.1', b.port, j2k, check=False)
            assert 'Store SCU Failed' in r.stderr, r.stderr
            b.expect('refusing transfer syntax 1.2.840.10008.1.2.4.91 (JPEG 2000) from SCANNER1: '
                     'not decodable here')
            b.expect('association aborted by SCANNER1 (it proposed transfer syntaxes this bridge '
                     'does not decode: 1.2.840.10008.1.2.4.91 (JPEG 2000))')
        # Accepted, then refused: a file whose header promises 60 frames of 6.
        lying = os.path.join(tmp, 'lying.dcm')
        shutil.copy(loop, lying)
        run(tool('dcmodify'), '-nb', '-m', '(0028,0008)=60', lying)
        r = storescu(b.port, lying)
        assert 'Cannot understand' in r.stderr or r.returncode != 0, (r.returncode, r.stderr)
        b.expect('Pixel Data has 115200 bytes, 160x120 x 60 frame(s) need 1152000')
        # A data set cut in half but sent as complete: answered with a failure status.
        data = dul.dataset_of(loop)
        a = dul.Association(b.port)
        a.store_begin('1.2.826.0.1.3680043.9.7.1')
        a.send_data(data[:len(data) // 2 & ~1], last=True)  # PDV fragments have even lengths
        status = a.response_status()
        a.release()
        assert status == 0xC000, hex(status)
        b.expect('rejected 1.2.826.0.1.3680043.9.7.1: ')
        # Mid-transfer: an A-ABORT, then a connection dropped with a reset.
        a = dul.Association(b.port)
        a.store_begin('1.2.826.0.1.3680043.9.7.2')
        a.send_data(data[:len(data) // 3 & ~1], last=False)
        a.abort()
        b.expect('receiving 1.2.826.0.1.3680043.9.7.2 failed')
        a = dul.Association(b.port)
        a.store_begin('1.2.826.0.1.3680043.9.7.3')
        a.send_data(data[:len(data) // 3 & ~1], last=False)
        a.drop()
        b.expect('receiving 1.2.826.0.1.3680043.9.7.3 failed')
        # each failed store's file is removed after its line (or its response) is out
        wait_until(lambda: b.spool_files() == [], 10, 'an empty spool')
        assert b.proc.poll() is None, 'the bridge died'
        # Still serving: a good loop arrives over RTP, pixel for pixel.
        rx = receiver(test_bin, sdp, loop, 12, 0)
        r = storescu(b.port, loop)
        assert r.returncode == 0, r.stderr
        b.expect('SCANNER1: queued 6 frame(s) for 127.0.0.1:%d' % rtp_port)
        finish(rx, 90)
        assert len(b.spool_files()) == 1, b.spool_files()  # the loop being repeated
    finally:
        rc = b.stop()
        print(b.text(), end='')
    assert rc == 0, rc
    assert 'echoview-dicom-bridge: stopped' in b.text()
    assert b.spool_files() == [], b.spool_files()


def listening_address(port):
    """The address the TCP listener on port is bound to, from /proc/net/tcp."""
    for line in open('/proc/net/tcp').read().split('\n')[1:]:
        f = line.split()
        if len(f) > 3 and f[3] == '0A' and int(f[1].split(':')[1], 16) == port:
            return socket.inet_ntoa(bytes.fromhex(f[1].split(':')[0])[::-1])
    return None


def limits_case(tmp):
    """bind-address (loopback by default), concurrent associations with an idle timeout, a
    bounded number of them, and the spool cap (0xA700): exact statuses, log lines and counts."""
    tool('storescu')
    loop, _, _ = phantom_loop(tmp, 'A4CH-LV')
    rtp_port = free_port(socket.SOCK_DGRAM)
    b = Bridge(tmp, '  - {calling-ae: SCANNER1, port: %d, width: 160, height: 120}\n' % rtp_port,
               listen=', idle-timeout: 2, max-associations: 2', top='spool-max-mb: 1\n')
    try:
        assert listening_address(b.port) == '127.0.0.1', listening_address(b.port)
        # A connection that sends nothing holds no worker: a scanner is served meanwhile.
        idle = socket.create_connection(('127.0.0.1', b.port))
        r = storescu(b.port, loop)
        assert r.returncode == 0, r.stderr
        b.expect('SCANNER1: queued 6 frame(s) for 127.0.0.1:%d' % rtp_port)
        b.expect('closing the connection from 127.0.0.1:%d: no association request within 2 s; '
                 '1 idle connection(s) closed so far' % idle.getsockname()[1])
        idle.settimeout(10)
        assert idle.recv(1) == b'', 'the idle connection is still open'
        idle.close()
        # Silent inside an association: aborted after dimse-timeout (5 s), counted.
        a = dul.Association(b.port)
        b.expect('aborting the association with SCANNER1: nothing received for 5 s; '
                 '2 idle connection(s) closed so far', timeout=20)
        a.sock.close()
        # the aborted association's worker has let go of its slot (it logs after the abort)
        wait_until(lambda: b.text().count('association with SCANNER1 ended') == 2, 10,
                   'the aborted association to end')
        # max-associations 2: a third while two run is rejected (transient, local limit).
        held = [dul.Association(b.port), dul.Association(b.port)]
        r = storescu(b.port, loop)
        assert r.returncode != 0 and 'Local Limit Exceeded' in r.stderr, r.stderr
        b.expect('association from SCANNER1 (127.0.0.1:')
        b.expect('rejected (transient, local limit exceeded): 2 association(s) running; '
                 '1 rejected so far')
        for a in held:
            a.release()
        # once they have ended, scanners are served again (a store tried before that would be
        # rejected and counted: wait for both workers' lines, then store once)
        wait_until(lambda: b.text().count('association with SCANNER1 ended') == 4, 20,
                   'the released associations to end')
        r = storescu(b.port, loop)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: b.text().count('SCANNER1: queued 6 frame(s)') == 2, 10, 'second loop')
        # Spool over spool-max-mb: a new C-STORE is answered 0xA700; what is there stays.
        filler = os.path.join(b.spool, 'held.bin')
        with open(filler, 'wb') as f:
            f.write(b'\0' * (1 << 20))
        before = b.spool_files()
        a = dul.Association(b.port)
        a.store_begin('1.2.826.0.1.3680043.9.7.9')
        a.send_data(dul.dataset_of(loop), last=True)
        status = a.response_status()
        a.release()
        assert status == 0xA700, hex(status)
        b.expect('C-STORE from SCANNER1: refused 1.2.826.0.1.3680043.9.7.9 with 0xA700 (out of '
                 'resources): the spool holds ')
        b.expect('more than spool-max-mb (1048576 bytes); 1 refused so far')
        assert b.spool_files() == before, (b.spool_files(), before)
        os.unlink(filler)
        r = storescu(b.port, loop)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: b.text().count('SCANNER1: queued 6 frame(s)') == 3, 10, 'third loop')
    finally:
        rc = b.stop()
        print(b.text(), end='')
    assert rc == 0, rc
    # storescu x3 stored; the silent association, the two held ones and the refused store ran
    # too; the busy one was rejected before it ran.
    b.expect('stopped: 7 association(s), 3 C-STORE(s) stored, 2 idle connection(s) closed, '
             '1 association(s) rejected (busy), 1 C-STORE(s) refused (spool full)')


def restart_case(tmp):
    """Loops acknowledged but not yet played survive a stop: the next start plays them. Log
    lines carry the time (stderr is not the journal here)."""
    tool('storescu')
    loops = [phantom_loop(tmp, view, frames=150, seed=seed)[0]
             for view, seed in (('A4CH-LV', 3), ('PLAX-full', 4), ('PSAX-LV', 5))]
    rtp_port = free_port(socket.SOCK_DGRAM)
    dest = '  - {calling-ae: SCANNER1, port: %d, width: 160, height: 120}\n' % rtp_port
    b = Bridge(tmp, dest)
    try:
        for loop in loops:     # 150 frames at 30/s: the first plays 5 s, the others wait
            r = storescu(b.port, loop)
            assert r.returncode == 0, r.stderr
        b.expect('SCANNER1: queued 150 frame(s) for 127.0.0.1:%d' % rtp_port)
    finally:
        rc = b.stop()
    text = b.text()
    print(text, end='')
    assert rc == 0, rc
    lines = [l for l in text.split('\n') if l]
    assert lines and all(re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z echoview-dicom-bridge: ', l)
                         for l in lines), lines[:3]
    assert text.count('SCANNER1: queued 150 frame(s)') == 3, text
    waiting = b.spool_files()
    # the one playing at the stop is done with; the two behind it stay
    assert len(waiting) == 2 and all(f.startswith('queued/SCANNER1/') for f in waiting), waiting
    b = Bridge(tmp, dest, port=b.port, log_name='bridge2.log')
    try:
        b.expect('SCANNER1: re-queued 2 loop(s) received before the restart')
        # played in order; the last one then repeats (and is the only file left)
        wait_until(lambda: b.spool_files() == [waiting[1]], 30, 'the re-queued loops played')
    finally:
        rc = b.stop()
        print(b.text(), end='')
    assert rc == 0 and b.spool_files() == [], (rc, b.spool_files())


def make_certificates(tmp):
    """A throwaway CA, a server and a client certificate it signs, and a self-signed client
    of another CA (PEM, in tmp); skips without openssl."""
    openssl = shutil.which('openssl')
    if not openssl:
        print('skip: openssl not installed')
        sys.exit(SKIP)

    def ssl(*args):
        run(openssl, *args)
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', os.path.join(tmp, 'ca.key'),
        '-out', os.path.join(tmp, 'ca.pem'), '-days', '2', '-subj', '/CN=echoview test CA')
    for name in ('server', 'client'):
        ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', os.path.join(tmp, name + '.key'),
            '-out', os.path.join(tmp, name + '.csr'), '-subj', '/CN=' + name)
        ssl('x509', '-req', '-in', os.path.join(tmp, name + '.csr'), '-CA',
            os.path.join(tmp, 'ca.pem'), '-CAkey', os.path.join(tmp, 'ca.key'),
            '-CAcreateserial', '-out', os.path.join(tmp, name + '.pem'), '-days', '2')
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', os.path.join(tmp, 'other.key'),
        '-out', os.path.join(tmp, 'other.pem'), '-days', '2', '-subj', '/CN=another CA')


def tls_case(tmp):
    """DICOM TLS (listen.tls): only TLS clients with a certificate of the configured CA store;
    every other client is refused with a log line; bad files are refused before listening."""
    tool('storescu')
    make_certificates(tmp)
    loop, _, _ = phantom_loop(tmp, 'A4CH-LV')
    rtp_port = free_port(socket.SOCK_DGRAM)
    sdp = os.path.join(tmp, 'scanner1.sdp')
    dest = '  - {calling-ae: SCANNER1, port: %d, width: 160, height: 120, sdp: %s}\n' % (
        rtp_port, sdp)
    # relative paths: from the configuration file's folder
    tls = ', tls: {certificate: server.pem, key: server.key, ca: ca.pem, ' \
          'require-client-cert: true}'

    def store(*tls_args):
        return run(tool('storescu'), '-R', *tls_args, '-aet', 'SCANNER1', '-aec', 'ECHOVIEW',
                   '127.0.0.1', b.port, loop, check=False)
    ca = ['+cf', os.path.join(tmp, 'ca.pem')]
    b = Bridge(tmp, dest, listen=tls)
    try:
        b.expect('spool capped, TLS, client certificates required)')
        rx = receiver(test_bin, sdp, loop, 12, 0)
        r = store('+tls', os.path.join(tmp, 'client.key'), os.path.join(tmp, 'client.pem'), *ca)
        assert r.returncode == 0, r.stderr
        b.expect('SCANNER1: queued 6 frame(s) for 127.0.0.1:%d' % rtp_port)
        finish(rx, 90)     # the loop streams, pixel for pixel
        r = store()        # plaintext
        assert r.returncode != 0 and 'Association Request Failed' in r.stderr, r.stderr
        b.expect('refused: a plaintext association request, this listener takes DICOM TLS '
                 'only (listen.tls); 1 TLS connection(s) refused so far')
        r = store('+tla', *ca)      # TLS without a client certificate
        assert r.returncode != 0 and 'Association Request Failed' in r.stderr, r.stderr
        b.expect('refused: TLS: TLS error: peer did not return a certificate; 2 TLS '
                 'connection(s) refused so far')
        r = store('+tls', os.path.join(tmp, 'other.key'), os.path.join(tmp, 'other.pem'), *ca)
        assert r.returncode != 0 and 'Association Request Failed' in r.stderr, r.stderr
        b.expect('refused: TLS: TLS error: certificate verify failed; 3 TLS connection(s) '
                 'refused so far')
        r = store('+tls', os.path.join(tmp, 'client.key'), os.path.join(tmp, 'client.pem'), *ca)
        assert r.returncode == 0, r.stderr      # still serving
    finally:
        rc = b.stop()
        print(b.text(), end='')
    assert rc == 0, rc
    b.expect('stopped: 2 association(s), 2 C-STORE(s) stored, 0 idle connection(s) closed, '
             '0 association(s) rejected (busy), 0 C-STORE(s) refused (spool full), 3 TLS '
             'connection(s) refused')
    # bad TLS settings: --check-config and a start refuse them with the file named
    with open(os.path.join(tmp, 'junk.pem'), 'w') as f:
        f.write('not PEM\n')
    bad = [('certificate: nope.pem, key: server.key',
            'DICOM TLS: certificate %s/nope.pem: No such file or directory' % tmp),
           ('certificate: server.pem, key: other.key',
            'DICOM TLS: key %s/other.key does not match certificate %s/server.pem' % (tmp, tmp)),
           ('certificate: junk.pem, key: server.key',
            'DICOM TLS: certificate %s/junk.pem is not a PEM certificate' % tmp),
           ('certificate: server.pem, key: junk.pem',
            'DICOM TLS: key %s/junk.pem is not a PEM private key (or is encrypted: give it '
            'without a passphrase)' % tmp),
           ('certificate: server.pem, key: server.key, ca: junk.pem',
            'DICOM TLS: ca %s/junk.pem holds no PEM certificate' % tmp),
           ('certificate: server.pem, key: %s' % tmp,
            'DICOM TLS: key %s: not a regular file' % tmp)]
    path = os.path.join(tmp, 'bad.yaml')
    for tls_keys, want in bad:
        with open(path, 'w') as f:
            f.write('listen: {port: 104, tls: {%s}}\ndestinations:\n%s' % (tls_keys, dest))
        for mode in ('--check-config', '--config'):
            r = run(bridge_bin, mode, path, check=False)
            last = r.stderr.strip().split('\n')[-1]
            assert r.returncode == 1 and last == 'echoview-dicom-bridge: %s: %s' % (path, want), \
                (mode, r.stderr, want)
        print('refused: %s' % want)
    with open(path, 'w') as f:
        f.write('listen: {port: 104%s}\ndestinations:\n%s' % (tls, dest))
    r = run(bridge_bin, '--check-config', path)
    assert r.stdout.strip() == '%s: ok (1 destination(s), DICOM TLS)' % path, r.stdout


def e2e_case(tmp):
    tool('storescu')
    if len(extra) < 2:
        print('skip: no echoviewd')
        sys.exit(SKIP)
    echoviewd, plugin_dir = extra[:2]
    model = os.path.join(root, 'models', 'echo-2cell-32')
    if not os.path.exists(os.path.join(model, 'model.yaml')):
        print('skip: models/echo-2cell-32 is not there')
        sys.exit(SKIP)
    # A view the shipped 32 px model gets right on this phantom patient (ground truth from the
    # phantom's manifest, carried in the file's Series Description).
    # 160x120 RGB is 57.6 kB a frame: well inside the default UDP receive buffer, so a loaded
    # machine does not lose packets (each loss marks the next frame DISCONT, which resets the
    # classifier's stable label).
    loop, view, region = phantom_loop(tmp, 'PSAX-LV', frames=30, size='160x120', seed=5)
    rtp_port = free_port(socket.SOCK_DGRAM)
    sdp = os.path.join(tmp, 'cart1.sdp')
    b = Bridge(tmp, '  - {calling-ae: CART1, port: %d, width: 160, height: 120, sdp: %s}\n'
               % (rtp_port, sdp))
    http_port = free_port()
    config = os.path.join(tmp, 'echoviewd.yaml')
    with open(config, 'w') as f:
        f.write('http: {port: %d}\nsupervision: {stall-timeout: 2, restart-delay: 0.2, '
                'restart-delay-max: 1}\nclassifier: {model-file: %s, backend: cpu, roi: "%s"}\n'
                'streams:\n  - id: cart1\n    source: {type: sdp, location: %s}\n'
                % (http_port, model, region, sdp))
    env = dict(os.environ, GST_PLUGIN_PATH=plugin_dir)
    env.pop('NOTIFY_SOCKET', None)
    dlog = open(os.path.join(tmp, 'echoviewd.log'), 'w+')
    d = subprocess.Popen([echoviewd, '--config', config], env=env, stdout=dlog,
                         stderr=subprocess.STDOUT)
    import http.client
    import json

    def stream():
        try:
            c = http.client.HTTPConnection('127.0.0.1', http_port, timeout=5)
            c.request('GET', '/api/v1/streams/cart1')
            r = c.getresponse()
            body = r.read()
            c.close()
            return json.loads(body) if r.status == 200 else None
        except (OSError, ValueError):
            return None
    try:
        wait_until(lambda: d.poll() is not None or stream(), 30, 'echoviewd')
        assert d.poll() is None, 'echoviewd exited with %s' % d.returncode
        r = storescu(b.port, loop, calling='CART1')
        assert r.returncode == 0, r.stderr
        b.expect('CART1: queued 30 frame(s) for 127.0.0.1:%d' % rtp_port)
        # The latest loop repeats, so the smoothed (stable) label settles; 'unknown' is the
        # label before it has.
        last = {}

        def settled():
            s = stream()
            last['stream'] = s
            return s if s and s.get('frames', 0) >= 30 and s.get('view') and \
                s['view'].get('stable_label') not in (None, 'unknown') else None
        try:
            s = wait_until(settled, 90, 'cart1 frames and a stable view')
        except AssertionError:
            print('last /api/v1/streams/cart1: %s' % json.dumps(last.get('stream'))[:1500])
            raise
        print('echoviewd: stream cart1 %s, %d frames, view %s' % (
            s['state'], s['frames'], json.dumps(s['view'])[:200]))
        assert s['view']['stable_label'] == view, (s['view'], view)
        print('ground truth %s == reported %s' % (view, s['view']['stable_label']))
    finally:
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
            d.wait(15)
        b.stop()
        dlog.seek(0)
        print(dlog.read()[-3000:], end='')
        print(b.text()[-2000:], end='')
    assert d.returncode == 0, d.returncode


def main():
    tmp = tempfile.mkdtemp(prefix='echoview-bridge-')
    try:
        {'config': config_case, 'bridge': bridge_case, 'restart': restart_case,
         'limits': limits_case, 'tls': tls_case,
         'e2e': e2e_case}[case](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
