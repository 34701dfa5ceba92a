#!/usr/bin/env python3
"""test_dockerfile.py SOURCE_ROOT [BINARY...]: deploy/Dockerfile is complete and minimal.

No Dockerfile linter (hadolint) is packaged for Debian 12, and no image can be built here
without a Docker daemon and a base image (tests/deploy/test_image.sh), so this reads the
Dockerfile itself: two stages FROM debian:12; every COPY source exists and every folder the
top-level meson.build enters is copied (the build stage can configure); every package the
build stage installs is one scripts/install-deps.sh installs; every runtime package is one of
those or a direct dependency of one (apt-cache depends); the runtime stage runs as a non-root
user, the daemon is the entrypoint, the HEALTHCHECK asks /healthz (an endpoint of
daemon/evd_http.c) on the installed configuration's port, and the environment is
echoviewd.service's. With BINARY arguments (the built echoviewd, plugin, libechoviewmeta),
each library they need (readelf NEEDED) comes from a runtime package (dpkg -S), from the
base image (libc6, libgcc-s1, libstdc++6) or from the image itself; the GStreamer elements of an rtp-raw
stream come from runtime packages (gst-inspect-1.0 Filename, dpkg -S).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

# In every debian:12 image (apt itself needs them).
BASE_IMAGE = {'libc6', 'libgcc-s1', 'libstdc++6'}
RTP_RAW_ELEMENTS = ['udpsrc', 'rtpjitterbuffer', 'rtpvrawdepay', 'queue', 'videoconvert', 'fakesink']


class Bad(Exception):
    pass


def fail(msg):
    raise Bad(msg)


def instructions(path):
    text = open(path, encoding='utf-8').read()
    text = re.sub(r'\\\n', ' ', text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            word, _, rest = line.partition(' ')
            out.append((word.upper(), rest.strip()))
    return out


def apt_packages(run):
    pkgs = []
    for m in re.finditer(r'apt-get install ([^&;]*)', run):
        pkgs += [w for w in m.group(1).split() if not w.startswith('-')]
    return pkgs


def install_deps_packages(root):
    text = open(os.path.join(root, 'scripts', 'install-deps.sh'), encoding='utf-8').read()
    body = text[text.index('packages=('):]
    body = body[:body.index('\n)')]
    pkgs = {w for line in body.splitlines()[1:] for w in line.split('#')[0].split()}
    with open(os.path.join(root, 'scripts', 'deps-extra.txt'), encoding='utf-8') as f:
        pkgs |= {line.strip() for line in f if line.strip() and not line.startswith('#')}
    return pkgs


def depends_of(pkgs):
    if not shutil.which('apt-cache'):
        return None
    r = subprocess.run(['apt-cache', 'depends', '--no-recommends', '--no-suggests'] + sorted(pkgs),
                       capture_output=True, text=True)
    return set(re.findall(r'^\s+(?:\|)?(?:Pre)?Depends: <?([^\s>]+)>?$', r.stdout, re.M))


def packages_of(files):
    """file -> package for files and their real paths, in one dpkg -S (it reads the whole
    database each time)."""
    want = sorted(set(files) | {os.path.realpath(f) for f in files})
    r = subprocess.run(['dpkg', '-S'] + want, capture_output=True, text=True)
    owners = {}
    for line in r.stdout.splitlines():
        pkgs, _, path = line.partition(': ')
        if path in want and not pkgs.startswith('diversion'):
            owners[path] = pkgs.split(',')[0].split(':')[0].strip()
    return owners


def check(root, dockerfile, binaries):
    ins = instructions(dockerfile)
    froms = [rest for word, rest in ins if word == 'FROM']
    if len(froms) != 2 or not all(f.split()[0] == 'debian:12' for f in froms):
        fail(f'expected a build and a runtime stage FROM debian:12, found {froms}')
    split = [i for i, (word, _) in enumerate(ins) if word == 'FROM'][1]
    build, runtime = ins[:split], ins[split:]

    copied = set()
    for word, rest in build:
        if word == 'COPY':
            args = shlex.split(rest)
            for s in args[:-1]:
                if not os.path.exists(os.path.join(root, s)):
                    fail(f'COPY source {s} does not exist in the tree')
                copied.add(os.path.normpath(s))
    top = open(os.path.join(root, 'meson.build'), encoding='utf-8').read()
    for sub in re.findall(r"^\s*subdir\('([^']+)'\)", top, re.M):
        if sub not in copied:
            fail(f'meson.build enters {sub}/, which the build stage does not COPY')
    for f in ('meson.build', 'meson_options.txt'):
        if f not in copied:
            fail(f'the build stage does not COPY {f}')
    for f in re.findall(r"meson\.project_source_root\(\) / '([^']+)'", open(
            os.path.join(root, 'daemon', 'meson.build'), encoding='utf-8').read()):
        if f.split('/')[0] not in copied:
            fail(f'daemon/meson.build reads {f}, not copied')

    known = install_deps_packages(root)
    build_pkgs = [p for word, rest in build if word == 'RUN' for p in apt_packages(rest)]
    runtime_pkgs = [p for word, rest in runtime if word == 'RUN' for p in apt_packages(rest)]
    if not build_pkgs or not runtime_pkgs:
        fail('a stage installs no package')
    for p in build_pkgs:
        if p not in known:
            fail(f'the build stage installs {p}, which scripts/install-deps.sh does not')
    deps = depends_of(known)
    for p in runtime_pkgs:
        if p not in known and (deps is None or p not in deps):
            fail(f'the runtime stage installs {p}: neither in scripts/install-deps.sh nor a '
                 'dependency of one of its packages')
    print(f'packages: {len(build_pkgs)} for the build, {len(runtime_pkgs)} at run time, all '
          f'from scripts/install-deps.sh or their dependencies'
          + ('' if deps is not None else ' (apt-cache not found: dependencies not checked)'))

    users = [rest for word, rest in runtime if word == 'USER']
    if not users or users[-1].split(':')[0] in ('root', '0'):
        fail('the runtime stage does not end as a non-root USER')
    ep = [rest for word, rest in runtime if word == 'ENTRYPOINT']
    if not ep or eval(ep[-1])[0] != '/usr/sbin/echoviewd':  # a JSON array
        fail(f'the entrypoint is not /usr/sbin/echoviewd: {ep}')
    hc = ' '.join(rest for word, rest in runtime if word == 'HEALTHCHECK')
    conf = open(os.path.join(root, 'conf', 'echoviewd.yaml'), encoding='utf-8').read()
    port = re.search(r'^  port: (\d+)', conf, re.M).group(1)
    endpoints = set(re.findall(r'strcmp\(url, "(/[^"]*)"\) == 0',
                               open(os.path.join(root, 'daemon', 'evd_http.c'), encoding='utf-8').read()))
    m = re.search(r'http://127\.0\.0\.1:(\d+)(/\w+)', hc)
    if not m or m.group(2) != '/healthz' or '/healthz' not in endpoints or m.group(1) != port:
        fail(f'HEALTHCHECK does not ask /healthz on port {port}: {hc}')
    if 'curl' not in runtime_pkgs:
        fail('the HEALTHCHECK runs curl, which the runtime stage does not install')
    unit = open(os.path.join(root, 'systemd', 'echoviewd.service'), encoding='utf-8').read()
    env = ' '.join(rest for word, rest in runtime if word == 'ENV')
    for name in ('GLIBC_TUNABLES', 'G_SLICE'):
        want = re.search(rf'^Environment={name}=(\S+)$', unit, re.M).group(1)
        if f'{name}={want}' not in env:
            fail(f'ENV {name} is not echoviewd.service\'s {want}')
    print('stages, COPY sources, user, entrypoint, HEALTHCHECK /healthz, environment: consistent')

    if binaries:
        ours = {os.path.basename(b) for b in binaries} | {'libechoviewmeta.so.0'}
        # A library of a feature the image does not build (DCMTK here: no libdcmtk-dev in the
        # build stage) is not linked there: only the build stage's -dev packages count.
        built_with = depends_of(build_pkgs) or set()
        ldconfig = subprocess.run(['/sbin/ldconfig', '-p'], capture_output=True, text=True).stdout
        paths = dict(re.findall(r'^\s+(\S+) \(libc6,x86-64[^)]*\) => (\S+)$', ldconfig, re.M))
        needs = []  # (what, file)
        for b in binaries:
            d = subprocess.run(['readelf', '-d', b], capture_output=True, text=True, check=True).stdout
            for lib in re.findall(r'\(NEEDED\)\s+Shared library: \[([^\]]+)\]', d):
                if lib in ours:
                    continue
                if lib not in paths:
                    fail(f'{os.path.basename(b)} needs {lib}, which no library here provides')
                needs.append((f'{os.path.basename(b)} needs {lib}', paths[lib]))
        elements = []
        if shutil.which('gst-inspect-1.0'):
            for el in RTP_RAW_ELEMENTS:
                r = subprocess.run(['gst-inspect-1.0', el], capture_output=True, text=True)
                m = re.search(r'Filename\s+(\S+)', r.stdout)
                if not m:
                    fail(f'GStreamer element {el} not found here')
                needs.append((f'element {el}', m.group(1)))
                elements.append(el)
        owners = packages_of([f for _, f in needs])
        left_out = set()
        for what, f in needs:
            pkg = owners.get(f) or owners.get(os.path.realpath(f))
            if pkg is None:
                fail(f'{what}: {f} belongs to no package')
            if pkg in runtime_pkgs or pkg in BASE_IMAGE:
                continue
            if what.startswith('element') or pkg in built_with:
                fail(f'{what} ({f}) of {pkg}, which the runtime stage does not install')
            left_out.add(pkg)
        print(f'libraries of {len(binaries)} binaries and {len(elements)} rtp-raw elements: from '
              'runtime packages' + (f' (not built in the image: {", ".join(sorted(left_out))})'
                                    if left_out else ''))


def main():
    root = os.path.abspath(sys.argv[1])
    dockerfile = os.path.join(root, 'deploy', 'Dockerfile')
    try:
        check(root, dockerfile, sys.argv[2:])
    except Bad as e:
        print(f'deploy/Dockerfile: {e}')
        return 1
    # The checker itself: broken copies must be refused with the reason.
    text = open(dockerfile, encoding='utf-8').read()
    cases = [
        ('COPY docs docs', 'COPY doc docs', 'COPY source doc does not exist'),
        ('COPY tests tests\n', '', 'does not COPY'),
        ('USER 10001:10001', 'USER root', 'non-root USER'),
        ('      curl \\\n', '', 'runs curl'),
        ('libmicrohttpd-dev', 'libmicrohttpd-dev libfoo-dev', 'installs libfoo-dev'),
        ('/healthz"]', '/readyz"]', 'HEALTHCHECK does not ask /healthz'),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for old, new, expect in cases:
            if old not in text:
                print(f'self-test: {old!r} is no longer in the Dockerfile')
                return 1
            path = os.path.join(tmp, 'Dockerfile')
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text.replace(old, new, 1))
            try:
                check(root, path, [])
            except Bad as e:
                if expect not in str(e):
                    print(f'broken copy ({old!r} -> {new!r}) refused for another reason: {e}')
                    return 1
                continue
            print(f'broken copy ({old!r} -> {new!r}) not refused')
            return 1
    print(f'broken copies refused: {len(cases)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
