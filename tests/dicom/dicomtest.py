"""dicomtest.py: what test_dicom.py and test_bridge.py share (stdlib only): the DCMTK tool
lookup that skips (77) when DCMTK is missing, and test_dicomsrc's RTP receiver (`receive SDP
REFERENCE FRAMES TOLERANCE`), started until it says 'ready' and then awaited."""
import shutil
import subprocess
import sys

SKIP = 77


def tool(name):
    path = shutil.which(name)
    if not path:
        print('skip: %s not installed (apt-get install dcmtk)' % name)
        sys.exit(SKIP)
    return path


def receiver(test_bin, sdp, reference, frames, tolerance):
    """Starts test_dicomsrc's receiver and returns it once it listens."""
    rx = subprocess.Popen([test_bin, 'receive', sdp, reference, str(frames), str(tolerance)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = rx.stdout.readline().strip()
    if line != 'ready':
        rx.kill()
        raise AssertionError('receiver: %s %s' % (line, rx.communicate()[0]))
    return rx


def finish(rx, timeout):
    """Waits for the receiver (killed after timeout seconds), prints its report and asserts
    that every frame matched."""
    try:
        out = rx.communicate(timeout=timeout)[0]
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    print(out, end='')
    assert rx.returncode == 0, out
