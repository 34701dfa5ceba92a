"""dul.py: a deliberately misbehaving DICOM Upper Layer client (PS3.8), stdlib only, for the
bridge's bad-input tests: associates for US Multi-frame Image Storage in Explicit VR Little
Endian, starts a C-STORE and then breaks it (A-ABORT or a dropped connection mid-dataset, or a
truncated dataset sent as if complete). storescu cannot be made to do these things."""
import socket
import struct

US_MULTIFRAME = '1.2.840.10008.5.1.4.1.1.3.1'
EXPLICIT_LE = '1.2.840.10008.1.2.1'
APP_CONTEXT = '1.2.840.10008.3.1.1.1'


def _uid(uid):
    b = uid.encode()
    return b + b'\0' if len(b) % 2 else b


def _item(kind, payload):
    return struct.pack('>BBH', kind, 0, len(payload)) + payload


def _pdu(kind, payload):
    return struct.pack('>BBI', kind, 0, len(payload)) + payload


def _element(group, elem, value):  # implicit VR little endian, for the command set
    return struct.pack('<HHI', group, elem, len(value)) + value


def dataset_of(path):
    """The data set of a Part 10 file (Explicit VR Little Endian): bytes after the meta group."""
    data = open(path, 'rb').read()
    assert data[128:132] == b'DICM', path
    pos = 132
    while data[pos:pos + 2] == b'\x02\x00':
        vr = data[pos + 4:pos + 6]
        if vr in (b'OB', b'OW', b'SQ', b'UN', b'UT'):
            length = struct.unpack('<I', data[pos + 8:pos + 12])[0]
            pos += 12 + length
        else:
            length = struct.unpack('<H', data[pos + 6:pos + 8])[0]
            pos += 8 + length
    return data[pos:]


def _read_pdu(sock):
    head = b''
    while len(head) < 6:
        chunk = sock.recv(6 - len(head))
        if not chunk:
            raise ConnectionError('connection closed')
        head += chunk
    kind, _, length = struct.unpack('>BBI', head)
    body = b''
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise ConnectionError('connection closed')
        body += chunk
    return kind, body


class Association:
    def __init__(self, port, calling='SCANNER1', called='ECHOVIEW'):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        pc = struct.pack('>BBBB', 1, 0, 0, 0) + _item(0x30, _uid(US_MULTIFRAME)) + \
            _item(0x40, _uid(EXPLICIT_LE))
        user = _item(0x51, struct.pack('>I', 16384)) + _item(0x52, _uid('1.2.826.0.1.3680043.9.7'))
        body = struct.pack('>HH', 1, 0) + called.ljust(16).encode() + \
            calling.ljust(16).encode() + b'\0' * 32 + _item(0x10, _uid(APP_CONTEXT)) + \
            _item(0x20, pc) + _item(0x50, user)
        self.sock.sendall(_pdu(0x01, body))
        kind, _ = _read_pdu(self.sock)
        assert kind == 0x02, 'association not accepted (PDU type %d)' % kind

    def _pdv(self, data, command, last):
        control = (1 if command else 0) | (2 if last else 0)
        pdv = struct.pack('>IBB', len(data) + 2, 1, control) + data
        self.sock.sendall(_pdu(0x04, pdv))

    def store_begin(self, sop_instance):
        fields = _element(0x0000, 0x0002, _uid(US_MULTIFRAME)) + \
            _element(0x0000, 0x0100, struct.pack('<H', 0x0001)) + \
            _element(0x0000, 0x0110, struct.pack('<H', 1)) + \
            _element(0x0000, 0x0700, struct.pack('<H', 0)) + \
            _element(0x0000, 0x0800, struct.pack('<H', 0x0000)) + \
            _element(0x0000, 0x1000, _uid(sop_instance))
        self._pdv(_element(0x0000, 0x0000, struct.pack('<I', len(fields))) + fields, True, True)

    def send_data(self, data, last):
        for i in range(0, len(data), 16000):
            chunk = data[i:i + 16000]
            self._pdv(chunk, False, last and i + 16000 >= len(data))

    def response_status(self):
        """Status (0000,0900) of the C-STORE-RSP."""
        kind, body = _read_pdu(self.sock)
        assert kind == 0x04, 'expected P-DATA, got PDU type %d' % kind
        cmd = body[6:]
        pos = 0
        while pos + 8 <= len(cmd):
            group, elem, length = struct.unpack('<HHI', cmd[pos:pos + 8])
            if (group, elem) == (0x0000, 0x0900):
                return struct.unpack('<H', cmd[pos + 8:pos + 10])[0]
            pos += 8 + length
        raise AssertionError('no status in the C-STORE response')

    def abort(self):
        self.sock.sendall(_pdu(0x07, struct.pack('>BBBB', 0, 0, 0, 0)))
        self.sock.close()

    def release(self):
        self.sock.sendall(_pdu(0x05, b'\0' * 4))
        try:
            _read_pdu(self.sock)
        finally:
            self.sock.close()

    def drop(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.sock.close()  # RST, as a cable pulled or a crashed scanner
