#!/usr/bin/env python3
"""test_kubernetes.py SOURCE_ROOT [ECHOVIEWD PLUGIN_DIR]: deploy/kubernetes/ is consistent.

Every manifest parses (python3-yaml) and is listed in kustomization.yaml; the StatefulSet's, the
headless Service's and the PodMonitor's selectors match the pod labels; the HTTP port and every
stream's RTP port of the ConfigMap's daemon configuration are the container ports and the
Service ports (names, numbers, protocols); the probes and the scrape path are endpoints the
daemon answers (daemon/evd_http.c); the ECHOVIEW_* variables are ones the daemon reads (grep
of daemon/ once it reads any, else the documented list); ECHOVIEW_SHARDS is the replica count;
the CPU request covers the per-stream cost measured in docs/PERFORMANCE.md; with ECHOVIEWD the
configuration passes `echoviewd --check-config` (model path pointed at the source tree). Then
the checker is shown to catch broken copies (a port off by one, a wrong selector, an unknown
probe path). kubectl is not used (not installed here): the checks are on the parsed objects.
"""
import copy
import glob
import math
import os
import re
import subprocess
import sys
import tempfile

import yaml

# The variables of the fleet interface (docs/DEPLOY.md), used while the daemon reads none.
DOCUMENTED_ENV = {'ECHOVIEW_INSTANCE', 'ECHOVIEW_SHARD', 'ECHOVIEW_SHARDS'}


class Inconsistent(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Inconsistent(msg)


def load(folder):
    docs = {}
    for path in sorted(glob.glob(os.path.join(folder, '*.yaml'))):
        with open(path, encoding='utf-8') as f:
            for doc in yaml.safe_load_all(f):
                need(isinstance(doc, dict) and 'kind' in doc, f'{path}: not a Kubernetes object')
                docs.setdefault(doc['kind'], []).append((os.path.basename(path), doc))
    return docs


def one(docs, kind):
    need(len(docs.get(kind, [])) == 1, f'expected one {kind}, found {len(docs.get(kind, []))}')
    return docs[kind][0][1]


def matches(selector, labels, what):
    need(selector and all(labels.get(k) == v for k, v in selector.items()),
         f'{what} selector {selector} does not match the pod labels {labels}')


def daemon_endpoints(root):
    with open(os.path.join(root, 'daemon', 'evd_http.c'), encoding='utf-8') as f:
        return set(re.findall(r'strcmp\(url, "(/[^"]*)"\) == 0', f.read()))


def daemon_env(root):
    names = set()
    for path in glob.glob(os.path.join(root, 'daemon', '*.c')):
        with open(path, encoding='utf-8') as f:
            names |= set(re.findall(r'"(ECHOVIEW_[A-Z_]+)"', f.read()))
    return names


def per_stream_core(root):
    with open(os.path.join(root, 'docs', 'PERFORMANCE.md'), encoding='utf-8') as f:
        m = re.search(r'about ([0-9.]+) core per stream for echoviewd', f.read())
    need(m, 'docs/PERFORMANCE.md no longer states the per-stream core cost')
    return float(m.group(1))


def cpu(q):
    q = str(q)
    return int(q[:-1]) / 1000 if q.endswith('m') else float(q)


def check(docs, root, kustomization):
    cm = one(docs, 'ConfigMap')
    svc = one(docs, 'Service')
    sts = one(docs, 'StatefulSet')
    pm = one(docs, 'PodMonitor')
    need(pm['apiVersion'] == 'monitoring.coreos.com/v1', 'PodMonitor is not monitoring.coreos.com/v1')
    listed = set(kustomization['resources'])
    files = {f for kind in docs for f, _ in docs[kind]}
    need(listed == files, f'kustomization.yaml lists {sorted(listed)}, the folder has {sorted(files)}')

    pod = sts['spec']['template']
    labels = pod['metadata']['labels']
    matches(sts['spec']['selector']['matchLabels'], labels, 'StatefulSet')
    matches(svc['spec']['selector'], labels, 'Service')
    matches(pm['spec']['selector']['matchLabels'], labels, 'PodMonitor')
    need(sts['spec']['serviceName'] == svc['metadata']['name'],
         'StatefulSet serviceName is not the Service: pods get no DNS names')
    need(svc['spec'].get('clusterIP') == 'None', 'the Service is not headless (clusterIP: None)')
    need(svc['spec'].get('publishNotReadyAddresses') is True,
         'the Service hides not-ready pods from DNS, so their senders cannot reach them')

    (container,) = pod['spec']['containers']
    args = container['args']
    need('--config' in args, 'the container is not given --config')
    config_path = args[args.index('--config') + 1]
    mounts = {m['name']: m['mountPath'] for m in container['volumeMounts']}
    volumes = {v['name']: v for v in pod['spec']['volumes']}
    cm_mounts = [n for n, v in volumes.items()
                 if v.get('configMap', {}).get('name') == cm['metadata']['name']]
    need(len(cm_mounts) == 1, 'the ConfigMap is not mounted once')
    key = os.path.relpath(config_path, mounts[cm_mounts[0]])
    need(key in cm['data'], f'--config {config_path} is not a key of the ConfigMap ({key})')
    config = yaml.safe_load(cm['data'][key])

    cports = {(p['name'], p['containerPort'], p['protocol']) for p in container['ports']}
    for name, _, _ in cports:
        need(len(name) <= 15 and re.fullmatch(r'[a-z0-9]([a-z0-9-]*[a-z0-9])?', name),
             f'port name {name} is not a valid IANA_SVC_NAME')
    need(len({n for n, _, _ in cports}) == len(cports), 'duplicate container port names')
    want = {('http', config['http']['port'], 'TCP')}
    for s in config['streams']:
        src = s['source']
        if src['type'].startswith('rtp-'):
            want.add(('rtp-' + s['id'], src['port'], 'UDP'))
    need(cports == want, f'container ports {sorted(cports)} are not the config\'s {sorted(want)}')
    sports = {(p['name'], p['port'], p['protocol']) for p in svc['spec']['ports']}
    need(sports == want, f'Service ports {sorted(sports)} are not the config\'s {sorted(want)}')
    for p in svc['spec']['ports']:
        need(p['targetPort'] == p['name'], f'Service port {p["name"]} targets {p["targetPort"]}')

    endpoints = daemon_endpoints(root)
    for probe, path in (('livenessProbe', '/healthz'), ('readinessProbe', '/readyz')):
        got = container[probe]['httpGet']
        need(got['path'] == path and got['path'] in endpoints,
             f'{probe} asks {got["path"]}, the daemon answers {sorted(endpoints)}')
        need(got['port'] == 'http', f'{probe} is not on the http port')
    for ep in pm['spec']['podMetricsEndpoints']:
        need(ep['path'] in endpoints, f'PodMonitor scrapes {ep["path"]}, not a daemon endpoint')
        need(ep['port'] in {n for n, _, _ in cports}, f'PodMonitor port {ep["port"]} is not a container port')

    env = {e['name']: e for e in container['env']}
    read = daemon_env(root)
    known = read if read else DOCUMENTED_ENV
    for name in env:
        if name.startswith('ECHOVIEW_'):
            need(name in known, f'{name} is not read by the daemon (knows {sorted(known)})')
    replicas = sts['spec']['replicas']
    need(env.get('ECHOVIEW_SHARDS', {}).get('value') == str(replicas),
         f'ECHOVIEW_SHARDS is not the replica count {replicas}')

    core = per_stream_core(root)
    streams = len(config['streams'])
    per_pod = math.ceil(streams / replicas)
    req = cpu(container['resources']['requests']['cpu'])
    need(req >= core * per_pod, f'cpu request {req} below {per_pod} streams x {core} core')
    need(cpu(container['resources']['limits']['cpu']) >= req, 'cpu limit below the request')
    return config, per_pod, core


def main():
    root = os.path.abspath(sys.argv[1])
    exe = sys.argv[2] if len(sys.argv) > 3 else None
    folder = os.path.join(root, 'deploy', 'kubernetes')
    docs = load(folder)
    kust = docs.pop('Kustomization')[0][1]
    config, per_pod, core = check(docs, root, kust)
    print(f'consistent: {len(config["streams"])} streams, ~{per_pod} per pod at {core} core each')

    if exe:
        config['classifier']['model-file'] = os.path.join(root, 'models', 'echo-2cell-96')
        with tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False) as f:
            yaml.safe_dump(config, f)
        try:
            r = subprocess.run([exe, '--check-config', f.name], capture_output=True, text=True,
                               env=dict(os.environ, GST_PLUGIN_PATH=sys.argv[3]))
        finally:
            os.unlink(f.name)
        if r.returncode != 0:
            print(f'echoviewd --check-config rejects the ConfigMap: {r.stderr.strip()}')
            return 1
        print('echoviewd --check-config: valid')

    # The checker itself: broken copies must be refused with the reason.
    def broken(edit, expect):
        d = copy.deepcopy(docs)
        edit(d)
        try:
            check(d, root, kust)
        except Inconsistent as e:
            if expect not in str(e):
                raise SystemExit(f'broken copy refused for another reason: {e}')
            return
        raise SystemExit(f'broken copy not refused (expected: {expect})')

    def port_off(d):
        d['Service'][0][1]['spec']['ports'][1]['port'] += 1

    def selector(d):
        d['Service'][0][1]['spec']['selector'] = {'app.kubernetes.io/name': 'other'}

    def probe(d):
        c = d['StatefulSet'][0][1]['spec']['template']['spec']['containers'][0]
        c['readinessProbe']['httpGet']['path'] = '/ready'

    def shards(d):
        d['StatefulSet'][0][1]['spec']['replicas'] = 4

    def env(d):
        c = d['StatefulSet'][0][1]['spec']['template']['spec']['containers'][0]
        c['env'].append({'name': 'ECHOVIEW_SHARD_COUNT', 'value': '3'})

    broken(port_off, 'Service ports')
    broken(selector, 'Service selector')
    broken(probe, 'readinessProbe asks /ready')
    broken(shards, 'ECHOVIEW_SHARDS is not the replica count 4')
    broken(env, 'ECHOVIEW_SHARD_COUNT is not read by the daemon')
    print('broken copies refused: port, selector, probe path, shard count, unknown variable')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Inconsistent as e:
        print(f'deploy/kubernetes: {e}')
        sys.exit(1)
