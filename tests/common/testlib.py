"""testlib.py: the helpers the Python tests share (Python 3 stdlib only).

check/finish: a named check prints 'ok   ' or 'FAIL ' and its text; finish prints the count and
exits 1 if any failed. free_port: a loopback port for a server the test starts. gi_modules:
PyGObject's GStreamer bindings, or a skip (77) without them.

A test under tests/<area>/ imports it with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
"""
import importlib
import os
import random
import socket
import sys

SKIP = 77
_count = {'checks': 0, 'failures': 0}


def check(cond, what):
    """Counts and prints one check; returns whether it passed."""
    _count['checks'] += 1
    if not cond:
        _count['failures'] += 1
    print(("ok   " if cond else "FAIL ") + what)
    return bool(cond)


def finish():
    """Prints the tally and exits: status 1 if a check failed, else 0."""
    print("%d checks, %d failed" % (_count['checks'], _count['failures']))
    sys.exit(1 if _count['failures'] else 0)


def _ephemeral_low():
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_ports = random.Random(os.getpid())


def free_port(kind=socket.SOCK_STREAM):
    """A port free on every address, below the kernel's ephemeral range: a port the kernel
    handed out (bind to 0) can be given again to an outgoing connection (the tests open
    hundreds) before the server binds it, and then its bind fails."""
    low = _ephemeral_low()
    for _ in range(200):
        port = _ports.randrange(20000, low) if low > 20100 else 0
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(('0.0.0.0', port))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError('no free port below %d' % low)


def gi_modules(*names):
    """The gi.repository modules names (version 1.0 each: 'Gst', 'GstController'), in order;
    without PyGObject or one of them, prints why and exits 77 (skip)."""
    try:
        import gi
        for name in names:
            gi.require_version(name, '1.0')
        return [importlib.import_module('gi.repository.' + name) for name in names]
    except (ImportError, ValueError) as e:
        print('skip: no PyGObject with %s 1.0 (%s); install python3-gi gir1.2-gstreamer-1.0'
              % (' and '.join(names), e))
        sys.exit(SKIP)
