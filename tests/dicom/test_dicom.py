"""test_dicom.py: the DICOM reading path (suite dicom). Drives test_dicomsrc on:
  pydicom  files shipped with Debian's python3-pydicom (RLE, JPEG baseline, YBR_FULL(_422),
           multi-frame, big endian, deflated), pixels vs dcm2pnm
  dcmtk    files written by DCMTK's own tools (img2dcm from BMP and JPEG, dcmcrle, dcmcjpeg
           baseline and lossless on a phantom cine loop), pixels vs dcm2pnm
  timing   Frame Time, Frame Time Vector, Cine Rate, no timing; loop; ultrasound region
  phantom  `echoview phantom --format dicom`: SOP class, frames, Frame Time, region (dcmdump)
  errors   truncated, no pixel data, unsupported transfer syntax, lying lengths: exact messages
Usage: test_dicom.py TEST_DICOMSRC ECHOVIEW SOURCE_ROOT CASE. Skips (77) without DCMTK tools or
pydicom's data."""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'common'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dicomtest import SKIP, finish, receiver, tool  # noqa: E402
from testlib import free_port  # noqa: E402

PYDICOM = '/usr/lib/python3/dist-packages/pydicom/data/test_files'

test_bin, echoview, root, case = sys.argv[1:5]


def run(*args, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError('%s failed (%d): %s%s' % (' '.join(map(str, args)), r.returncode,
                                                       r.stdout, r.stderr))
    return r.stdout


def check(*args):
    print(run(test_bin, *args), end='')


def dump(path, tag):
    """The value of one top-level attribute as dcmdump prints it, e.g. '[33.3333]'."""
    out = run(tool('dcmdump'), '-q', '+P', tag, path)
    line = out.strip().splitlines()[0] if out.strip() else ''
    return line.split(None, 2)[2].rsplit('#', 1)[0].strip() if line else None


def phantom_loop(tmp, view='A4CH-LV', extra=()):
    out = os.path.join(tmp, 'ph')
    run(echoview, 'phantom', '--format', 'dicom', '--out', out, '--patients', '1', '--views',
        view, '--frames-per-patient', '6', '--full-frame', '160x120', '--seed', '3', *extra)
    files = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith('.dcm')]
    assert len(files) == 1, files
    return files[0]


def pydicom_case(tmp):
    if not os.path.isdir(PYDICOM):
        print('skip: python3-pydicom test data not installed')
        sys.exit(SKIP)
    names = ['SC_rgb_rle_2frame.dcm',        # RLE, RGB, multi-frame
             'SC_rgb_rle_16bit_2frame.dcm',  # RLE, 16-bit RGB, multi-frame
             'rtdose.dcm',                   # 15 frames, 32-bit, implicit VR
             'rtdose_rle.dcm',               # the same RLE compressed
             'rtdose_expb.dcm',              # the same big endian
             'SC_rgb_jpeg_dcmtk.dcm',        # JPEG baseline, YBR_FULL
             'SC_rgb_dcmtk_+eb+cy+np.dcm',   # JPEG baseline, YBR_FULL_422
             'SC_rgb_dcmtk_+eb+cy+s2.dcm',   # JPEG baseline, YBR_FULL_422
             'SC_rgb_small_odd_jpeg.dcm',    # JPEG baseline, odd size
             'SC_ybr_full_422_uncompressed.dcm',
             'SC_rgb_jpeg_gdcm.dcm',         # JPEG lossless
             'JPGExtended.dcm',              # JPEG extended, 12-bit
             'MR_small_RLE.dcm', 'MR_small_implicit.dcm', 'MR_small_bigendian.dcm',
             'ExplVR_BigEnd.dcm',            # US image, RGB, big endian
             'image_dfl.dcm',                # deflated
             'CT_small.dcm']
    files = [os.path.join(PYDICOM, n) for n in names if os.path.exists(os.path.join(PYDICOM, n))]
    assert len(files) >= 10, 'pydicom test data incomplete: %r' % files
    # Debian's dcm2pnm has no JPEG decoder; dcmj2pnm is the same renderer with one.
    jpeg = [f for f in files if 'JPEG' in dump(f, '0002,0010')]
    check('pixels', tool('dcmj2pnm'), tmp, *jpeg)
    check('pixels', tool('dcm2pnm'), tmp, *[f for f in files if f not in jpeg])


def dcmtk_case(tmp):
    dcm2pnm, img2dcm = tool('dcm2pnm'), tool('img2dcm')
    dcmcrle, dcmcjpeg, dcmj2pnm = tool('dcmcrle'), tool('dcmcjpeg'), tool('dcmj2pnm')
    files = []
    # img2dcm: a BMP (Secondary Capture, native) and a JPEG (encapsulated as it is).
    src = os.path.join(PYDICOM, 'SC_rgb_rle.dcm') if os.path.isdir(PYDICOM) else None
    loop = phantom_loop(tmp)
    if src:
        run(dcm2pnm, '+obr', src, os.path.join(tmp, 'in.bmp'))
        run(dcmj2pnm, '+oj', src, os.path.join(tmp, 'in.jpg'))
        run(img2dcm, '-i', 'BMP', os.path.join(tmp, 'in.bmp'), os.path.join(tmp, 'bmp.dcm'))
        run(img2dcm, '-i', 'JPEG', os.path.join(tmp, 'in.jpg'), os.path.join(tmp, 'jpg.dcm'))
        files += [os.path.join(tmp, 'bmp.dcm'), os.path.join(tmp, 'jpg.dcm')]
    run(dcm2pnm, '+obr', '+F', '1', loop, os.path.join(tmp, 'us.bmp'))
    run(img2dcm, '-i', 'BMP', os.path.join(tmp, 'us.bmp'), os.path.join(tmp, 'us_bmp.dcm'))
    files.append(os.path.join(tmp, 'us_bmp.dcm'))
    # dcmcrle / dcmcjpeg on a multi-frame US cine loop: every frame must still match.
    run(dcmcrle, loop, os.path.join(tmp, 'rle.dcm'))
    run(dcmcjpeg, '+eb', loop, os.path.join(tmp, 'jpeg_baseline.dcm'))
    run(dcmcjpeg, '+el', loop, os.path.join(tmp, 'jpeg_lossless.dcm'))
    run(dcmcjpeg, '+ee', loop, os.path.join(tmp, 'jpeg_extended.dcm'))
    files += [loop] + [os.path.join(tmp, n) for n in
                       ('rle.dcm', 'jpeg_baseline.dcm', 'jpeg_lossless.dcm', 'jpeg_extended.dcm')]
    assert dump(os.path.join(tmp, 'rle.dcm'), '0002,0010') == '=RLELossless'
    jpeg = [f for f in files if 'JPEG' in dump(f, '0002,0010')]
    assert len(jpeg) == 4, jpeg
    check('pixels', dcmj2pnm, tmp, *jpeg)
    check('pixels', dcm2pnm, tmp, *[f for f in files if f not in jpeg])


def set_attrs(src, dst, *modify):
    shutil.copy(src, dst)
    run(tool('dcmodify'), '-nb', '-ie', *modify, dst)
    return dst


def timing_case(tmp):
    loop = phantom_loop(tmp)
    assert dump(loop, '0018,1063') == '[33.3333]', dump(loop, '0018,1063')
    check('timing', loop, '6', '33.3333')
    check('loop', loop, '6')
    # Frame Time wins over Cine Rate when the Frame Increment Pointer names it.
    check('timing', set_attrs(loop, os.path.join(tmp, 'ft40.dcm'), '-m', '(0018,1063)=40'),
          '6', '40')
    # Frame Time Vector through the Frame Increment Pointer (entry 0 is 0 by definition).
    # Per-frame times: frame i lasts entry i+1, the last frame the mean; caps say 0/1.
    vec = set_attrs(loop, os.path.join(tmp, 'ftv.dcm'), '-e', '(0018,1063)',
                    '-m', '(0028,0009)=(0018,1065)', '-i', '(0018,1065)=0\\20\\30\\40\\50\\60')
    check('timing', vec, '6', '20,30,40,50,60,40')
    # Cine Rate only.
    check('timing', set_attrs(loop, os.path.join(tmp, 'cine.dcm'), '-e', '(0018,1063)',
                              '-e', '(0028,0009)', '-e', '(0008,2144)', '-m', '(0018,0040)=50'),
          '6', '20')
    # Nothing: 30 frames/s.
    check('timing', set_attrs(loop, os.path.join(tmp, 'none.dcm'), '-e', '(0018,1063)',
                              '-e', '(0028,0009)', '-e', '(0008,2144)', '-e', '(0018,0040)'),
          '6', '33.3333333')
    check('roi', loop, region_of(loop))
    # The region reaches echoviewclassify: it crops there and names the loop's view.
    model = os.path.join(root, 'models', 'echo-2cell-32')
    if os.path.exists(os.path.join(model, 'model.yaml')):
        out = os.path.join(tmp, 'psax')
        run(echoview, 'phantom', '--format', 'dicom', '--out', out, '--patients', '1', '--views',
            'PSAX-LV', '--frames-per-patient', '30', '--full-frame', '320x240', '--seed', '5')
        check('classify', os.path.join(out, 'PSAX-LV', 'p0000.dcm'), model, 'PSAX-LV')
    if os.path.isdir(PYDICOM):
        check('roi', os.path.join(PYDICOM, 'MR_small_RLE.dcm'), 'auto')


def region_of(path):
    """x,y,w,h from the first Sequence of Ultrasound Regions item, read with dcmdump."""
    out = run(tool('dcmdump'), '-q', path)
    vals = {}
    for line in out.splitlines():
        line = line.strip()
        for tag in ('(0018,6018)', '(0018,601a)', '(0018,601c)', '(0018,601e)'):
            if line.startswith(tag) and tag not in vals:
                vals[tag] = int(line.split()[2])
    x0, y0, x1, y1 = (vals[t] for t in ('(0018,6018)', '(0018,601a)', '(0018,601c)', '(0018,601e)'))
    return '%d,%d,%d,%d' % (x0, y0, x1 - x0 + 1, y1 - y0 + 1)


def read_pgm(path):
    with open(path, 'rb') as f:
        data = f.read()
    parts = data.split(None, 4)
    assert parts[0] == b'P5' and parts[3] == b'255', path
    w, h = int(parts[1]), int(parts[2])
    return w, h, parts[4][-w * h:]


def phantom_case(tmp):
    dcm2pnm = tool('dcm2pnm')
    out = os.path.join(tmp, 'ph')
    args = ['--patients', '2', '--views', 'A4CH-LV,PLAX-full', '--frames-per-patient', '5',
            '--full-frame', '160x120', '--seed', '11']
    run(echoview, 'phantom', '--format', 'dicom', '--out', out, *args)
    run(echoview, 'phantom', '--format', 'pgm', '--sequence', '--out', os.path.join(tmp, 'pgm'),
        *args)
    rows = open(os.path.join(out, 'manifest.csv')).read().split()
    assert rows[0] == 'path,label,split,patient,quality,roi_x,roi_y,roi_w,roi_h', rows[0]
    assert len(rows) == 5, rows
    for row in rows[1:]:
        rel, label, _, patient, _, x, y, w, h = row.split(',')
        path = os.path.join(out, rel)
        assert rel == '%s/%s.dcm' % (label, patient), rel
        assert dump(path, '0008,0016') == '=UltrasoundMultiframeImageStorage'
        assert dump(path, '0008,0060') == '[US]'
        assert dump(path, '0028,0008') == '[5]'
        assert dump(path, '0028,0009') == '(0018,1063)'
        assert dump(path, '0018,1063') == '[33.3333]'
        assert dump(path, '0018,0040') == '[30]'
        assert dump(path, '0008,103e') == '[%s]' % label
        assert dump(path, '0028,0004') == '[MONOCHROME2]'
        assert region_of(path) == ','.join((x, y, w, h)), (region_of(path), row)
        # Every frame is the phantom's PGM frame of the same patient, view and time.
        for f in os.listdir(tmp):
            if f.startswith('ref.'):
                os.unlink(os.path.join(tmp, f))
        run(dcm2pnm, '+Fa', path, os.path.join(tmp, 'ref'))
        for i in range(5):
            got = read_pgm(os.path.join(tmp, 'ref.%d.pgm' % i))
            want = read_pgm(os.path.join(tmp, 'pgm', label, '%s_f%02d.pgm' % (patient, i)))
            assert got == want, '%s frame %d differs from the PGM frame' % (rel, i)
        print('%s: 5 frames equal to the PGM sequence, region %s,%s,%s,%s' % (rel, x, y, w, h))
    r = subprocess.run([echoview, 'phantom', '--format', 'tiff', '--out', out],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--format png, pgm or dicom, got 'tiff'" in r.stderr, r.stderr


def errors_case(tmp):
    loop = phantom_loop(tmp)
    data = open(loop, 'rb').read()
    size = len(data)
    cases = []
    # Truncated in the pixel data (the header is intact) and in the header.
    with open(os.path.join(tmp, 'trunc_pixels.dcm'), 'wb') as f:
        f.write(data[:size // 2])
    cases.append(('trunc_pixels.dcm', 'not a readable DICOM file'))
    with open(os.path.join(tmp, 'trunc_header.dcm'), 'wb') as f:
        f.write(data[:300])
    cases.append(('trunc_header.dcm', 'not a readable DICOM file'))
    # Lying lengths: more frames than the pixel data holds; an element length past the end.
    set_attrs(loop, os.path.join(tmp, 'frames.dcm'), '-m', '(0028,0008)=60')
    cases.append(('frames.dcm', 'frames.dcm: Pixel Data has 115200 bytes, 160x120 x 60 frame(s) '
                                'need 1152000'))
    at = data.find(b'\x08\x00\x3e\x10LO')  # Series Description, explicit VR: 2-byte length
    assert at > 0
    lying = bytearray(data)
    lying[at + 6:at + 8] = struct.pack('<H', 0xfff0)
    with open(os.path.join(tmp, 'lying.dcm'), 'wb') as f:
        f.write(lying)
    cases.append(('lying.dcm', 'not a readable DICOM file'))
    set_attrs(loop, os.path.join(tmp, 'zero_frames.dcm'), '-m', '(0028,0008)=0')
    cases.append(('zero_frames.dcm', "Number of Frames '0' is out of range (1..100000)"))
    set_attrs(loop, os.path.join(tmp, 'huge.dcm'), '-m', '(0028,0010)=40000')
    cases.append(('huge.dcm', 'image size 160x40000 is out of range (1..16384)'))
    # A file meta element whose length runs past the end (DCMTK would allocate it: fuzz_dicom).
    at = data.find(b'\x02\x00\x01\x00OB')
    assert at > 132, at
    meta = bytearray(data)
    meta[at + 8:at + 12] = struct.pack('<I', 0xa0000000)
    with open(os.path.join(tmp, 'meta.dcm'), 'wb') as f:
        f.write(meta)
    cases.append(('meta.dcm', 'meta.dcm: not a readable DICOM file: file meta element (0002,0001) '
                              'declares 2684354560 bytes, past the end of the file'))
    # RLE segment offsets outside the fragment (DCMTK 3.6.7's decoder would read past it).
    rle = os.path.join(tmp, 'rle.dcm')
    run(tool('dcmcrle'), loop, rle)
    rle_data = bytearray(open(rle, 'rb').read())
    header = rle_data.find(struct.pack('<II', 1, 64))
    assert header > 0
    rle_data[header + 4:header + 8] = struct.pack('<I', 0x7fffffff)
    with open(os.path.join(tmp, 'rle_offsets.dcm'), 'wb') as f:
        f.write(rle_data)
    cases.append(('rle_offsets.dcm', 'rle_offsets.dcm: RLE fragment 1: segment 0 offset '
                                     '2147483647 is outside the fragment or out of order'))
    # A TEM marker (FF01) where a frame's JPEG data should start (DCMTK 3.6.7's bit-depth
    # scan never steps past one and hangs: fuzz_dicom).
    jpeg = os.path.join(tmp, 'jpeg.dcm')
    run(tool('dcmcjpeg'), loop, jpeg)
    jpeg_data = bytearray(open(jpeg, 'rb').read())
    starts = [m.start() + 8 for m in re.finditer(re.escape(b'\xfe\xff\x00\xe0') + b'.{4}\xff\xd8',
                                                 jpeg_data, re.S)]
    assert len(starts) == 6, starts  # one fragment a frame
    jpeg_data[starts[1]:starts[1] + 2] = b'\xff\x01'
    with open(os.path.join(tmp, 'jpeg_tem.dcm'), 'wb') as f:
        f.write(jpeg_data)
    cases.append(('jpeg_tem.dcm', 'jpeg_tem.dcm: JPEG fragment 2: a TEM marker (FF01) at byte 0, '
                                  'which this DICOM decoder cannot read past'))
    with open(os.path.join(tmp, 'text.dcm'), 'w') as f:
        f.write('this is not DICOM\n' * 20)
    cases.append(('text.dcm', 'not a readable DICOM file'))
    cases.append(('missing.dcm', 'missing.dcm: No such file or directory'))
    if os.path.isdir(PYDICOM):
        for name, want in (('rtplan.dcm', 'no Pixel Data (SOP class 1.2.840.10008.5.1.4.1.1.481.5)'),
                           ('JPEG2000.dcm', 'unsupported transfer syntax 1.2.840.10008.1.2.4.91 '
                                            '(JPEG 2000)'),
                           ('MR_small_jpeg_ls_lossless.dcm', 'unsupported transfer syntax '
                                                             '1.2.840.10008.1.2.4.80 (JPEG-LS Lossless)'),
                           ('MR_truncated.dcm', 'not a readable DICOM file')):
            shutil.copy(os.path.join(PYDICOM, name), os.path.join(tmp, name))
            cases.append((name, want))
    for name, want in cases:
        check('error', os.path.join(tmp, name), want)


# Mean absolute difference allowed per frame after the trip: raw RGB is exact; the lossy
# encodings are bounded by what their encoders at the bridge's settings keep.
RTP_TOLERANCE = {'raw': 0.0, 'jpeg': 3.0, 'h264': 6.0}


def rtp_case(tmp, encoding):
    loop = phantom_loop(tmp)
    port = free_port(socket.SOCK_DGRAM)
    sdp = os.path.join(tmp, 'stream.sdp')
    args = [echoview, 'dicom2rtp', loop, loop, loop, '--port', str(port), '--encoding', encoding,
            '--sdp', sdp]
    run(*args)  # writes the SDP (the frames go nowhere yet)
    text = open(sdp, newline='').read()
    want = {'raw': 'a=rtpmap:96 raw/90000\r\na=fmtp:96 sampling=RGB; width=160; height=120; '
                   'depth=8; colorimetry=BT601-5\r\n',
            'h264': 'a=rtpmap:96 H264/90000\r\n', 'jpeg': 'a=rtpmap:96 JPEG/90000\r\n'}[encoding]
    assert 'm=video %d RTP/AVP 96\r\n' % port in text and want in text, text
    rx = receiver(test_bin, sdp, loop, 12, RTP_TOLERANCE[encoding])
    try:
        out = run(*args)
        assert 'dicom2rtp: sent 18 frame(s) from 3 file(s), 0 skipped' in out, out
    except BaseException:
        rx.kill()
        rx.wait()
        raise
    finish(rx, 60)
    if encoding != 'raw':
        return
    # A folder plays its .dcm files in name order; unreadable ones are skipped, exit status 1.
    folder = os.path.join(tmp, 'folder')
    os.mkdir(folder)
    for name in ('b.dcm', 'a.dcm'):
        shutil.copy(loop, os.path.join(folder, name))
    with open(os.path.join(folder, 'c.dcm'), 'w') as f:
        f.write('not DICOM')
    shutil.copy(loop, os.path.join(folder, 'notes.txt'))
    r = subprocess.run([echoview, 'dicom2rtp', folder, '--port', str(port)], capture_output=True,
                       text=True)
    played = [line.split()[2].rstrip(':') for line in r.stderr.splitlines()
              if line.startswith('dicom2rtp: playing ')]
    assert played == [os.path.join(folder, 'a.dcm'), os.path.join(folder, 'b.dcm')], r.stderr
    assert r.returncode == 1 and 'dicom2rtp: sent 12 frame(s) from 2 file(s), 1 skipped' in \
        r.stdout and 'c.dcm: not a readable DICOM file' in r.stderr, (r.stdout, r.stderr)
    # --loop: one 6-frame file replays; the receiver gets three passes of identical frames.
    rx = subprocess.Popen([test_bin, 'receive', sdp, loop, '18', '0'], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    sender = None
    try:
        assert rx.stdout.readline().strip() == 'ready'
        sender = subprocess.Popen([echoview, 'dicom2rtp', loop, '--port', str(port), '--loop'],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rest = rx.communicate(timeout=60)[0]
    finally:
        for p in (rx, sender):
            if p and p.poll() is None:
                p.kill()
                p.wait()
    print('--loop: ' + rest, end='')
    assert rx.returncode == 0, rest


def main():
    tmp = tempfile.mkdtemp(prefix='echoview-dicom-')
    try:
        {'pydicom': pydicom_case, 'dcmtk': dcmtk_case, 'timing': timing_case,
         'phantom': phantom_case, 'errors': errors_case,
         'rtp-raw': lambda t: rtp_case(t, 'raw'), 'rtp-h264': lambda t: rtp_case(t, 'h264'),
         'rtp-jpeg': lambda t: rtp_case(t, 'jpeg')}[case](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
